/**
 * Column lineage of a statement, from the PostgreSQL parse tree (libpg-query JSON): which source
 * columns (`schema.table.column`) each output column shows, whether it shows them plainly (a bare
 * column reference) or through an expression, and where else the statement uses source columns
 * (WHERE, JOIN ON, GROUP BY, function arguments...). Strict masking refuses statements that use a
 * masked column anywhere but as a plain output; views count through their own lineage.
 *
 * Resolution follows SQL scoping (FROM items, aliases, column aliases, CTEs, outer queries for
 * correlated subqueries). A reference it cannot resolve counts as every same-named column of every
 * relation the statement mentions: unsure means masked.
 */
import { UNKNOWN_SOURCE } from '../../../core/masking/profile';
import { asNode, commonColumnNames, EMPTY, itemSources, list, only, renameColumns, stringValue, union, UNKNOWN, type Column, type Node, type Scope, type ScopeItem, unknownRelationSources } from './lineage-scope';


export interface Output {
  readonly name: string | undefined;
  readonly sources: ReadonlySet<string>;
  /** A bare column reference: the value passes through unchanged. */
  readonly plain: boolean;
}

export interface Lineage {
  readonly outputs: readonly Output[];
  /** Source columns used other than as an output, with the first place each was used. */
  readonly uses: ReadonlyMap<string, string>;
  /**
   * The outputs are the statement's result columns one for one. False when a `*` covers a relation
   * of unknown shape (a function in FROM) or the statement's result is not a query's (CALL, SHOW):
   * its outputs then only say which sources may show up somewhere.
   */
  readonly exact: boolean;
}

/** A relation as the catalog knows it: ordered columns, and for views the lineage of each column. */
export interface RelationShape {
  readonly schema: string;
  readonly name: string;
  readonly columns: readonly string[];
  readonly view?: Lineage;
}

/** Relations named `name` (in `schema`, or in any schema when unqualified). */
export type RelationLookup = (schema: string | undefined, name: string) => readonly RelationShape[];

/** Source columns a user-defined function reads (its body's lineage), or undefined for built-ins. */
export type FunctionLookup = (schema: string | undefined, name: string) => ReadonlySet<string> | undefined;

/** Nested SELECTs analyzed before the statement is refused as too deep. */
const MAX_NESTING_DEPTH = 64;

export function analyzeStatement(stmt: Node, lookup: RelationLookup, functions?: FunctionLookup): Lineage {
  return new LineageWalker(lookup, stmt, functions).statement(stmt);
}

class LineageWalker {
  private readonly uses = new Map<string, string>();
  /** Every column of every relation the statement names, by column name: the fallback for unresolved names. */
  private readonly byName = new Map<string, Set<string>>();
  private depth = 0;
  /** A `*` covered an item of unknown shape: the outputs are not the result's columns one for one. */
  private inexact = false;

  constructor(
    private readonly lookup: RelationLookup,
    root: Node,
    private readonly functions: FunctionLookup | undefined,
  ) {
    this.collectRelations(root);
  }

  statement(stmt: Node): Lineage {
    const [type, body] = only(stmt);
    const root: Scope = { items: [], outer: undefined, ctes: new Map() };
    switch (type) {
      case 'SelectStmt': {
        const outputs = this.select(body, root);
        return { outputs, uses: this.uses, exact: !this.inexact };
      }
      case 'InsertStmt':
      case 'UpdateStmt':
      case 'DeleteStmt':
      case 'MergeStmt': {
        const outputs = this.modify(body, root);
        return { outputs, uses: this.uses, exact: !this.inexact };
      }
      case 'ExplainStmt':
      case 'DeclareCursorStmt':
      case 'PrepareStmt': {
        const inner = asNode(body.query);
        const lineage = inner ? this.statement(inner) : this.noOutputs();
        // EXPLAIN shows plans, not values: its statement's outputs are not shown to the caller.
        return type === 'ExplainStmt' ? this.noOutputs() : lineage;
      }
      case 'CopyStmt':
        return this.copy(body, root);
      case 'CreateTableAsStmt': {
        const inner = asNode(body.query);
        if (inner) this.useAll(this.statement(inner).outputs, 'CREATE TABLE AS');
        return this.noOutputs();
      }
      default:
        // Writes and anything else: every column reference counts as a use.
        this.expression(body, root, `a ${type ?? 'statement'}`);
        return this.noOutputs();
    }
  }

  /** A statement whose result columns, if any, the parse tree does not give (CALL, SHOW, FETCH). */
  private noOutputs(): Lineage {
    return { outputs: [], uses: this.uses, exact: false };
  }

  /** INSERT, UPDATE, DELETE, MERGE: every column they read is a use; RETURNING gives the outputs. */
  private modify(body: Node, root: Scope): Output[] {
    const scope: Scope = { items: [], outer: undefined, ctes: new Map(root.ctes) };
    const withClause = asNode(body.withClause);
    for (const cte of list(withClause?.ctes)) this.commonTable(asNode(cte.CommonTableExpr), scope, withClause?.recursive === true);
    const relation = asNode(body.relation);
    if (relation) scope.items.push(this.rangeVar(relation, scope));
    for (const item of [...list(body.fromClause), ...list(body.usingClause)]) scope.items.push(...this.fromItem(item, scope));
    const source = asNode(body.sourceRelation);
    if (source) scope.items.push(...this.fromItem(source, scope));
    for (const key of Object.keys(body)) {
      if (key !== 'returningClause' && key !== 'withClause') this.expression(body[key], scope, 'a write');
    }
    // PostgreSQL 18's RETURNING clause (with its OLD/NEW aliases) holds the list.
    return list(asNode(body.returningClause)?.exprs).flatMap((t) => this.target(asNode(t.ResTarget) ?? {}, scope));
  }

  private copy(body: Node, scope: Scope): Lineage {
    const query = asNode(body.query);
    if (query) {
      this.useAll(this.statement(query).outputs, 'COPY');
      return this.noOutputs();
    }
    const relation = asNode(body.relation);
    if (relation) {
      const item = this.rangeVar(relation, scope);
      const wanted = list(body.attlist).map(stringValue);
      const columns = wanted.length ? item.columns.filter((c) => wanted.includes(c.name)) : item.columns;
      this.useAll(item.opaque ? [{ sources: UNKNOWN }] : columns, 'COPY');
    }
    return this.noOutputs();
  }

  private select(s: Node, outer: Scope | undefined, outerCtes?: Map<string, readonly Column[]>): Output[] {
    if (++this.depth > MAX_NESTING_DEPTH) throw new Error('statement nested too deeply to analyze');
    try {
      const scope: Scope = { items: [], outer, ctes: new Map(outerCtes ?? outer?.ctes ?? []) };
      const withClause = asNode(s.withClause);
      for (const cte of list(withClause?.ctes)) this.commonTable(asNode(cte.CommonTableExpr), scope, withClause?.recursive === true);
      if (s.op && s.op !== 'SETOP_NONE') return this.setOperation(s, scope);
      for (const values of list(s.valuesLists)) this.expression(values, scope, 'VALUES');
      for (const item of list(s.fromClause)) scope.items.push(...this.fromItem(item, scope));
      const outputs: Output[] = [];
      for (const t of list(s.targetList)) outputs.push(...this.target(asNode(t.ResTarget) ?? {}, scope));
      this.expression(s.whereClause, scope, 'WHERE');
      this.ordering(s.groupClause, outputs, scope, 'GROUP BY');
      this.expression(s.havingClause, scope, 'HAVING');
      this.ordering(s.sortClause, outputs, scope, 'ORDER BY');
      this.expression(s.windowClause, scope, 'a window');
      this.expression(s.limitCount, scope, 'LIMIT');
      this.expression(s.limitOffset, scope, 'OFFSET');
      const distinct = list(s.distinctClause);
      if (distinct.length === 1 && Object.keys(distinct[0] ?? {}).length === 0) this.useAll(outputs, 'DISTINCT');
      else this.expression(distinct, scope, 'DISTINCT ON');
      return outputs;
    } finally {
      this.depth--;
    }
  }

  /**
   * One WITH query, added to `scope`. A recursive one is read twice: first to learn its columns, then
   * with every column of its own name standing for all its sources (a recursive step may move any
   * value to any column), which is then what each of its columns shows.
   */
  private commonTable(c: Node | undefined, scope: Scope, recursive: boolean): void {
    if (!c) return;
    const name = String(c.ctename);
    const query = asNode(c.ctequery);
    const renamed = list(c.aliascolnames).map(stringValue);
    const read = (): Column[] => (query ? this.subquery(query, scope) : []).map((o, i) => ({ name: renamed[i] ?? o.name ?? '?column?', sources: o.sources, plain: o.plain }));
    // A recursive query's reference to itself, on the first reading: a relation with no columns yet.
    if (recursive) scope.ctes.set(name, []);
    let columns = read();
    if (recursive) {
      const all = (cols: readonly Column[]): Column[] => {
        const sources = union(...cols.map((col) => col.sources));
        return cols.map((col) => ({ name: col.name, sources, plain: false }));
      };
      scope.ctes.set(name, all(columns));
      columns = all(read());
    }
    // A CTE or subquery that passes a column on may rename it: its outputs count as uses.
    this.useAll(columns, `the WITH query ${name}`);
    scope.ctes.set(name, columns);
  }

  private subquery(node: Node, scope: Scope): Output[] {
    const [type, body] = only(node);
    if (type === 'SelectStmt') return this.select(body, scope);
    // INSERT/UPDATE/DELETE ... RETURNING inside WITH.
    if (type === 'InsertStmt' || type === 'UpdateStmt' || type === 'DeleteStmt' || type === 'MergeStmt') return this.modify(body, scope);
    this.expression(body, scope, `a ${type ?? 'statement'}`);
    return [];
  }

  private setOperation(s: Node, scope: Scope): Output[] {
    const left = this.select(asNode(s.larg) ?? {}, scope.outer, scope.ctes);
    const right = this.select(asNode(s.rarg) ?? {}, scope.outer, scope.ctes);
    const keepsValues = s.op === 'SETOP_UNION' && s.all === true;
    const outputs = left.map((l, i) => {
      const r = right[i];
      return { name: l.name, sources: union(l.sources, r?.sources ?? EMPTY), plain: keepsValues && l.plain && (r?.plain ?? true) };
    });
    // UNION (without ALL), INTERSECT and EXCEPT compare values.
    if (!keepsValues) this.useAll(outputs, String(s.op).replace('SETOP_', ''));
    this.ordering(s.sortClause, outputs, scope, 'ORDER BY');
    this.expression(s.limitCount, scope, 'LIMIT');
    return outputs;
  }

  private fromItem(node: Node, scope: Scope): ScopeItem[] {
    const [type, body] = only(node);
    switch (type) {
      case 'RangeVar':
        return [this.rangeVar(body, scope)];
      case 'RangeSubselect': {
        const query = asNode(body.subquery) ?? {};
        // LATERAL subqueries see the items before them; others see only outer queries.
        const visible: Scope = body.lateral ? scope : { items: [], outer: scope.outer, ctes: scope.ctes };
        const outputs = this.subquery(query, visible);
        const alias = asNode(body.alias);
        const columns = renameColumns(outputs.map((o) => ({ name: o.name ?? '?column?', sources: o.sources, plain: o.plain })), alias);
        this.useAll(columns, `the subquery ${String(alias?.aliasname ?? '')}`.trim());
        return [{ alias: String(alias?.aliasname ?? ''), columns, opaque: false }];
      }
      case 'JoinExpr': {
        const left = this.fromItem(asNode(body.larg) ?? {}, scope);
        const right = this.fromItem(asNode(body.rarg) ?? {}, scope);
        const joined: Scope = { items: [...scope.items, ...left, ...right], outer: scope.outer, ctes: scope.ctes };
        this.expression(body.quals, joined, 'JOIN ON');
        const using = list(body.usingClause).map(stringValue);
        const common = body.isNatural ? commonColumnNames(left, right) : using;
        for (const name of common) for (const c of this.resolveName(name, joined)) this.use(c.sources, 'JOIN USING');
        const alias = asNode(body.alias);
        if (!alias) return [...left, ...right];
        const items = [...left, ...right];
        const opaque = items.some((i) => i.opaque);
        return [{ alias: String(alias.aliasname), columns: items.flatMap((i) => i.columns), opaque, derived: opaque ? union(...items.flatMap(itemSources)) : undefined }];
      }
      case 'RangeFunction':
      case 'RangeTableFunc':
      case 'JsonTable': {
        // Whatever its arguments (or a SQL function's body) read may come out in any of its columns.
        const derived = new Set<string>();
        this.expression(body, scope, 'a function in FROM', derived);
        this.use(derived, 'a function in FROM');
        const alias = asNode(body.alias);
        return [{ alias: String(alias?.aliasname ?? ''), columns: [], opaque: true, derived }];
      }
      default: {
        const derived = new Set<string>([UNKNOWN_SOURCE]);
        this.expression(body, scope, 'FROM', derived);
        this.use(derived, 'FROM');
        return [{ alias: '', columns: [], opaque: true, derived }];
      }
    }
  }

  private rangeVar(rv: Node, scope: Scope): ScopeItem {
    const name = String(rv.relname);
    const schema = rv.schemaname === undefined ? undefined : String(rv.schemaname);
    const alias = asNode(rv.alias);
    const aliasName = String(alias?.aliasname ?? name);
    if (!schema) {
      for (let s: Scope | undefined = scope; s; s = s.outer) {
        const cte = s.ctes.get(name);
        if (cte) return { alias: aliasName, columns: renameColumns(cte, alias), opaque: false };
      }
    }
    const relations = this.lookup(schema, name);
    if (relations.length === 0) return { alias: aliasName, columns: [], opaque: true, derived: unknownRelationSources(schema, name) };
    // Unqualified names may match relations in several schemas: count them all.
    const columns: Column[] = [];
    for (const rel of relations) {
      rel.columns.forEach((col, i) => {
        const out = rel.view?.outputs[i];
        const sources = rel.view ? (out?.sources ?? new Set([UNKNOWN_SOURCE])) : new Set([`${rel.schema}.${rel.name}.${col}`]);
        const existing = columns.findIndex((c) => c.name === col);
        const plain = rel.view ? (out?.plain ?? false) : true;
        if (existing >= 0) columns[existing] = { name: col, sources: union(columns[existing]?.sources ?? EMPTY, sources), plain: false };
        else columns.push({ name: col, sources, plain });
      });
      if (rel.view) for (const [source, where] of rel.view.uses) this.use(new Set([source]), `the view ${rel.name} (${where})`);
    }
    return { alias: aliasName, columns: renameColumns(columns, alias), opaque: false };
  }

  private target(t: Node, scope: Scope): Output[] {
    const val = asNode(t.val) ?? {};
    const name = t.name === undefined ? undefined : String(t.name);
    const ref = asNode(val.ColumnRef);
    if (ref) {
      const fields = list(ref.fields);
      const last = fields[fields.length - 1];
      if (last && 'A_Star' in last) {
        const qualifier = fields.length > 1 ? stringValue(fields[fields.length - 2] ?? {}) : undefined;
        const items = scope.items.filter((i) => qualifier === undefined || i.alias === qualifier);
        return items.flatMap((i): Output[] => {
          if (!i.opaque) return i.columns.map((c) => ({ name: c.name, sources: c.sources, plain: c.plain }));
          // Columns of unknown number: one output stands for all of them.
          this.inexact = true;
          return [{ name: undefined, sources: i.derived ?? UNKNOWN, plain: false }];
        });
      }
      const resolved = this.columnRef(fields, scope);
      return [{ name: name ?? resolved.name, sources: resolved.sources, plain: resolved.plain }];
    }
    const sources = new Set<string>();
    this.expression(val, scope, undefined, sources);
    return [{ name, sources, plain: false }];
  }

  /** ORDER BY / GROUP BY: an output position or an output name refers to that output. */
  private ordering(clause: unknown, outputs: readonly Output[], scope: Scope, where: string): void {
    for (const item of list(clause)) {
      const node = asNode(item.SortBy)?.node !== undefined ? asNode(asNode(item.SortBy)?.node) : item;
      const position = asNode(asNode(node?.A_Const)?.ival)?.ival;
      if (typeof position === 'number') {
        this.use(outputs[position - 1]?.sources ?? EMPTY, where);
        continue;
      }
      const fields = list(asNode(node?.ColumnRef)?.fields);
      const byName = fields.length === 1 ? outputs.find((o) => o.name === stringValue(fields[0] ?? {})) : undefined;
      if (byName) this.use(byName.sources, where);
      else this.expression(node, scope, where);
    }
  }

  /**
   * Walks an expression: column references and subqueries in it are uses at `where`, or, when
   * `into` is given (an output expression), sources of that output.
   */
  private expression(value: unknown, scope: Scope, where: string | undefined, into?: Set<string>): void {
    if (value === null || typeof value !== 'object') return;
    if (Array.isArray(value)) {
      for (const v of value) this.expression(v, scope, where, into);
      return;
    }
    const node = value as Node;
    const ref = asNode(node.ColumnRef);
    if (ref) {
      const fields = list(ref.fields);
      const last = fields[fields.length - 1];
      const sources =
        last && 'A_Star' in last
          ? union(...scope.items.filter((i) => fields.length === 1 || i.alias === stringValue(fields[0] ?? {})).flatMap(itemSources))
          : this.columnRef(fields, scope).sources;
      this.flow(sources, where, into);
      return;
    }
    const sublink = asNode(node.SubLink);
    if (sublink) {
      this.expression(sublink.testexpr, scope, where, into);
      const outputs = this.subquery(asNode(sublink.subselect) ?? {}, scope);
      for (const o of outputs) this.flow(o.sources, where ?? 'a subquery', into);
      return;
    }
    const call = asNode(node.FuncCall);
    if (call && this.functions) {
      // A function that reads masked columns counts as reading them, wherever it is called.
      const names = list(call.funcname).map(stringValue);
      const read = this.functions(names.length > 1 ? names[names.length - 2] : undefined, names[names.length - 1] ?? '');
      if (read) this.flow(read, where ?? 'a function', into);
    }
    const select = asNode(node.SelectStmt);
    if (select) {
      for (const o of this.select(select, scope)) this.flow(o.sources, where ?? 'a subquery', into);
      return;
    }
    for (const key of Object.keys(node)) if (key !== 'location') this.expression(node[key], scope, where, into);
  }

  private flow(sources: ReadonlySet<string>, where: string | undefined, into: Set<string> | undefined): void {
    if (into) for (const s of sources) into.add(s);
    else if (where) this.use(sources, where);
  }

  private columnRef(fields: Node[], scope: Scope): Column {
    const names = fields.map(stringValue);
    const column = names[names.length - 1] ?? '';
    if (names.length === 1) {
      const found = this.resolveName(column, scope);
      if (found.length) return found.length === 1 ? (found[0] as Column) : { name: column, sources: union(...found.map((c) => c.sources)), plain: true };
      // A relation's name alone is a whole-row reference: every column, not plainly.
      for (let s: Scope | undefined = scope; s; s = s.outer) {
        const item = s.items.find((i) => i.alias === column);
        if (item) return { name: column, sources: union(...itemSources(item)), plain: false };
      }
    } else {
      const qualifier = names[names.length - 2] ?? '';
      for (let s: Scope | undefined = scope; s; s = s.outer) {
        const item = s.items.find((i) => i.alias === qualifier);
        if (!item) continue;
        const c = item.columns.find((col) => col.name === column);
        if (c) return c;
        if (item.opaque) return { name: column, sources: union(item.derived ?? UNKNOWN, this.byName.get(column) ?? EMPTY), plain: false };
        break;
      }
    }
    return { name: column, sources: this.byName.get(column) ?? EMPTY, plain: true };
  }

  /** Columns called `name` in the innermost scope that has any (SQL's rule for unqualified names). */
  private resolveName(name: string, scope: Scope): Column[] {
    for (let s: Scope | undefined = scope; s; s = s.outer) {
      const found = s.items.flatMap((i) => i.columns.filter((c) => c.name === name));
      if (found.length) return found;
      const opaque = s.items.filter((i) => i.opaque);
      // A name no known column has may be a column of a function in FROM: it shows what that reads.
      if (opaque.length) {
        const sources = union(this.byName.get(name) ?? EMPTY, ...opaque.map((i) => i.derived ?? UNKNOWN));
        if (sources.size) return [{ name, sources, plain: false }];
      }
    }
    return [];
  }

  private use(sources: ReadonlySet<string>, where: string): void {
    for (const s of sources) if (!this.uses.has(s)) this.uses.set(s, where);
  }

  private useAll(columns: readonly { sources: ReadonlySet<string> }[], where: string): void {
    for (const c of columns) this.use(c.sources, where);
  }

  private collectRelations(value: unknown): void {
    if (value === null || typeof value !== 'object') return;
    if (Array.isArray(value)) {
      for (const v of value) this.collectRelations(v);
      return;
    }
    const node = value as Node;
    const rv = asNode(node.RangeVar);
    if (rv) {
      for (const rel of this.lookup(rv.schemaname === undefined ? undefined : String(rv.schemaname), String(rv.relname))) {
        rel.columns.forEach((col, i) => {
          const sources = rel.view ? (rel.view.outputs[i]?.sources ?? new Set([UNKNOWN_SOURCE])) : new Set([`${rel.schema}.${rel.name}.${col}`]);
          const set = this.byName.get(col) ?? new Set<string>();
          for (const s of sources) set.add(s);
          this.byName.set(col, set);
        });
      }
    }
    for (const key of Object.keys(node)) if (key !== 'location') this.collectRelations(node[key]);
  }
}

