import { parseSync } from 'libpg-query';
import type { Logger } from '../../../core/log';
import { UNKNOWN_SOURCE } from '../../../core/masking/profile';
import { analyzeStatement, type FunctionLookup, type Lineage, type RelationShape } from './lineage';

/** Objects made by initdb have OIDs below this (PostgreSQL's FirstNormalObjectId): system catalogs. */
export const FIRST_USER_OID = 16384;
/** Relations loaded per database; a column of a relation beyond this is masked in full. */
export const MAX_CATALOG_RELATIONS = 20_000;
/** Catalog age after which the next lookup refreshes it in the background (DDL made outside twokey). */
export const CATALOG_MAX_AGE_MS = 60_000;
const MAX_VIEW_NESTING = 16;

export interface CatalogRelation extends RelationShape {
  readonly oid: number;
  readonly kind: string;
  /** Column names by attribute number. */
  readonly attnums: ReadonlyMap<number, string>;
  readonly viewDefinition: string | undefined;
}

/** The catalog rows: one JSON object per user relation (see CATALOG_SQL). */
export type CatalogQuery = (sql: string) => Promise<(string | null)[][]>;

export const CATALOG_SQL = `SELECT json_build_object(
  'oid', c.oid, 'schema', n.nspname, 'name', c.relname, 'kind', c.relkind,
  'columns', (SELECT json_agg(json_build_array(a.attnum, a.attname) ORDER BY a.attnum)
              FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
  'view', CASE WHEN c.relkind IN ('v', 'm') THEN pg_catalog.pg_get_viewdef(c.oid) END)::text
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f') AND c.oid >= ${FIRST_USER_OID}
  AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_toast%'
ORDER BY c.oid LIMIT ${MAX_CATALOG_RELATIONS}`;

export const FUNCTIONS_SQL = `SELECT json_build_object('schema', n.nspname, 'name', p.proname, 'language', l.lanname, 'body', p.prosrc)::text
FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace JOIN pg_catalog.pg_language l ON l.oid = p.prolang
WHERE p.oid >= ${FIRST_USER_OID} AND n.nspname <> 'information_schema' LIMIT ${MAX_CATALOG_RELATIONS}`;

/** The names of the functions initdb made: what a call may name besides the user functions loaded above. */
export const BUILTIN_FUNCTIONS_SQL = `SELECT DISTINCT p.proname FROM pg_catalog.pg_proc p WHERE p.oid < ${FIRST_USER_OID}`;

interface RawFunction {
  schema: string;
  name: string;
  language: string;
  body: string | null;
}

interface RawRelation {
  oid: number;
  schema: string;
  name: string;
  kind: string;
  columns: [number, string][] | null;
  view: string | null;
}

/**
 * What the masking engine needs from one database's catalog: relations by OID (RowDescription names
 * a column by table OID and attribute number) and by name (strict mode reads the statement's text),
 * with the lineage of every view column. Loaded in one query on the read credential, shared by the
 * sessions of that database, refreshed after DDL, on an unknown OID, and when older than a minute.
 */
export class PgCatalog {
  private byOid = new Map<number, CatalogRelation>();
  private byName = new Map<string, CatalogRelation[]>();
  private functionsByName = new Map<string, { schema: string; sources: ReadonlySet<string> }[]>();
  private builtinFunctions: ReadonlySet<string> = new Set();
  private loadedAt = 0;
  private inFlight: Promise<void> | undefined;
  private stale = true;
  /** Bumped on every load: plans made from an older catalog are not reused. */
  version = 0;

  constructor(
    private readonly query: CatalogQuery,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  get ready(): boolean {
    return !this.stale;
  }

  /** Marks the catalog out of date (a DDL statement ran); the next session lookup reloads it. */
  invalidate(): void {
    this.stale = true;
  }

  /** Loads (or reloads) the catalog; concurrent callers share one query. */
  refresh(): Promise<void> {
    this.inFlight ??= this.load().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  /** Refreshes in the background when the catalog is older than CATALOG_MAX_AGE_MS. */
  keepFresh(): void {
    if (this.now() - this.loadedAt > CATALOG_MAX_AGE_MS && !this.inFlight) {
      this.refresh().catch((e: unknown) => this.log.warn('pg.catalog.refresh-failed', { error: String(e) }));
    }
  }

  relation(oid: number): CatalogRelation | undefined {
    return this.byOid.get(oid);
  }

  lookup = (schema: string | undefined, name: string): readonly CatalogRelation[] => {
    const all = this.byName.get(name) ?? [];
    return schema === undefined ? all : all.filter((r) => r.schema === schema);
  };

  /** What a user-defined function reads; undefined for names that are not user functions (built-ins). */
  functionSources = (schema: string | undefined, name: string): ReadonlySet<string> | undefined => sourcesOf(this.functionsByName, schema, name);

  /** Whether a call may name a built-in function (unqualified, or in pg_catalog). */
  isBuiltinFunction(schema: string | undefined, name: string): boolean {
    return (schema === undefined || schema === 'pg_catalog') && this.builtinFunctions.has(name);
  }

  private async load(): Promise<void> {
    const [rows, functionRows, builtinRows] = await Promise.all([this.query(CATALOG_SQL), this.query(FUNCTIONS_SQL), this.query(BUILTIN_FUNCTIONS_SQL)]);
    // json_build_object renders an oid as a string.
    const raws: RawRelation[] = rows
      .map((r) => JSON.parse(r[0] ?? 'null') as RawRelation | null)
      .filter((r): r is RawRelation => r !== null)
      .map((r) => ({ ...r, oid: Number(r.oid) }));
    const byOid = new Map<number, CatalogRelation>();
    const byName = new Map<string, CatalogRelation[]>();
    const pending = new Map<number, RawRelation>();
    for (const raw of raws) {
      if (raw.view === null) this.add(byOid, byName, raw, undefined);
      else pending.set(raw.oid, raw);
    }
    // Views: analyzed against the catalog built so far, views over views in dependency order.
    const lookup = (schema: string | undefined, name: string): readonly CatalogRelation[] => {
      for (const raw of pending.values()) {
        if (raw.name === name && (schema === undefined || raw.schema === schema)) resolveView(raw, 0, calls);
      }
      const all = byName.get(name) ?? [];
      return schema === undefined ? all : all.filter((r) => r.schema === schema);
    };
    const resolveView = (raw: RawRelation, depth: number, functions?: FunctionLookup): void => {
      if (!pending.delete(raw.oid)) return;
      this.add(byOid, byName, raw, depth > MAX_VIEW_NESTING ? undefined : viewLineage(raw, lookup, functions, this.log));
    };
    // Functions before the views that call them (a function over a view resolves that view first), each
    // when first called: bodies call each other in any order. A call cycle reads unknown columns.
    const builtins = new Set(builtinRows.map((r) => r[0] ?? ''));
    const raw = functionRows.map((r) => JSON.parse(r[0] ?? 'null') as RawFunction | null).filter((f): f is RawFunction => f !== null);
    const userFunctions = new Set(raw.map((f) => f.name.toLowerCase()));
    const resolved = new Map<RawFunction, ReadonlySet<string>>();
    const resolving = new Set<RawFunction>();
    const sourcesOfFunction = (f: RawFunction): ReadonlySet<string> => {
      const done = resolved.get(f);
      if (done) return done;
      if (resolving.has(f)) return UNKNOWN_SOURCES;
      resolving.add(f);
      const sources = functionLineage(f, byName, lookup, calls, userFunctions);
      resolving.delete(f);
      resolved.set(f, sources);
      return sources;
    };
    /** What a call in a body or view reads: a user function's sources, nothing for a built-in, anything for an unknown name. */
    const calls = (schema: string | undefined, name: string): ReadonlySet<string> | undefined => {
      const found = raw.filter((f) => f.name === name && (schema === undefined || f.schema === schema));
      if (found.length) return new Set(found.flatMap((f) => [...sourcesOfFunction(f)]));
      return (schema === undefined || schema === 'pg_catalog') && builtins.has(name) ? undefined : UNKNOWN_SOURCES;
    };
    const functionsByName = new Map<string, { schema: string; sources: ReadonlySet<string> }[]>();
    for (const f of raw) functionsByName.set(f.name, [...(functionsByName.get(f.name) ?? []), { schema: f.schema, sources: sourcesOfFunction(f) }]);
    for (const view of [...pending.values()]) resolveView(view, 0, calls);
    this.functionsByName = functionsByName;
    this.builtinFunctions = builtins;
    this.byOid = byOid;
    this.byName = byName;
    this.loadedAt = this.now();
    this.stale = false;
    this.version++;
    this.log.info('pg.catalog.loaded', { relations: byOid.size });
  }

  private add(byOid: Map<number, CatalogRelation>, byName: Map<string, CatalogRelation[]>, raw: RawRelation, view: Lineage | undefined): void {
    const columns = raw.columns ?? [];
    const relation: CatalogRelation = {
      oid: raw.oid,
      schema: raw.schema,
      name: raw.name,
      kind: raw.kind,
      columns: columns.map(([, name]) => name),
      attnums: new Map(columns),
      viewDefinition: raw.view ?? undefined,
      view: raw.view === null ? undefined : (view ?? opaqueLineage(columns.length)),
    };
    byOid.set(raw.oid, relation);
    const list = byName.get(raw.name) ?? [];
    list.push(relation);
    byName.set(raw.name, list);
  }
}

/**
 * Source columns a function body reads. SQL bodies are analyzed like statements (with what the
 * functions they call read); PL/pgSQL bodies (and SQL ones the parser does not take) count every
 * column of every relation and what every user function their text names; an empty body, one that
 * runs SQL built at run time (EXECUTE) or in another language reads unknown columns, C and internal
 * ones included: a user-made C or internal function may run SQL it is given (dblink, a copy of
 * query_to_xml), and built-ins are not loaded here.
 */
function functionLineage(f: RawFunction, byName: ReadonlyMap<string, readonly CatalogRelation[]>, lookup: (schema: string | undefined, name: string) => readonly RelationShape[], calls: FunctionLookup, userFunctions: ReadonlySet<string>): ReadonlySet<string> {
  const sources = new Set<string>();
  const body = f.body ?? '';
  if (f.language === 'sql' && body.trim()) {
    try {
      for (const s of (parseSync(body) as { stmts: { stmt: Record<string, unknown> }[] }).stmts) {
        const lineage = analyzeStatement(s.stmt, lookup, calls);
        for (const o of lineage.outputs) for (const source of o.sources) sources.add(source);
        for (const source of lineage.uses.keys()) sources.add(source);
      }
      return sources;
    } catch {
      // Parameters written as names, or a body the parser does not take: fall back to the text.
    }
  }
  const words = new Set(body.toLowerCase().match(/[a-z_][a-z0-9_$]*/g) ?? []);
  if (!body.trim() || (f.language !== 'plpgsql' && f.language !== 'sql') || words.has('execute')) return UNKNOWN_SOURCES;
  for (const word of words) {
    if (word !== f.name.toLowerCase() && userFunctions.has(word)) for (const s of calls(undefined, word) ?? []) sources.add(s);
  }
  for (const [name, relations] of byName) {
    if (!words.has(name.toLowerCase())) continue;
    for (const rel of relations) rel.columns.forEach((col, i) => {
      const view = rel.view?.outputs[i];
      if (view) for (const s of view.sources) sources.add(s);
      else sources.add(`${rel.schema}.${rel.name}.${col}`);
    });
  }
  return sources;
}

const UNKNOWN_SOURCES: ReadonlySet<string> = new Set([UNKNOWN_SOURCE]);

function sourcesOf(functions: ReadonlyMap<string, readonly { schema: string; sources: ReadonlySet<string> }[]>, schema: string | undefined, name: string): ReadonlySet<string> | undefined {
  const found = (functions.get(name) ?? []).filter((f) => schema === undefined || f.schema === schema);
  if (found.length === 0) return undefined;
  const all = new Set<string>();
  for (const f of found) for (const s of f.sources) all.add(s);
  return all;
}

function viewLineage(raw: RawRelation, lookup: (schema: string | undefined, name: string) => readonly RelationShape[], functions: FunctionLookup | undefined, log: Logger): Lineage | undefined {
  try {
    const tree = parseSync(raw.view ?? '') as { stmts: { stmt: Record<string, unknown> }[] };
    const stmt = tree.stmts[0]?.stmt;
    const lineage = stmt ? analyzeStatement(stmt, lookup, functions) : undefined;
    if (!lineage || (lineage.exact && lineage.outputs.length === (raw.columns ?? []).length)) return lineage;
    // Outputs that cannot be matched to the view's columns: each column may show any of them.
    const sources = new Set(lineage.outputs.flatMap((o) => [...o.sources]));
    return { ...lineage, exact: true, outputs: (raw.columns ?? []).map(([, name]) => ({ name, sources, plain: false })) };
  } catch (e) {
    log.warn('pg.catalog.view-unreadable', { view: `${raw.schema}.${raw.name}`, error: String(e) });
    return undefined;
  }
}

/** A view whose definition cannot be analyzed: every column may show anything (masked in full). */
function opaqueLineage(columns: number): Lineage {
  const sources = new Set([UNKNOWN_SOURCE]);
  return { outputs: Array.from({ length: columns }, () => ({ name: undefined, sources, plain: false })), uses: new Map([[UNKNOWN_SOURCE, 'an unreadable view']]), exact: true };
}
