import { parseSync } from 'libpg-query';
import type { PgCatalog } from './catalog';
import { analyzeStatement, type Lineage, type RelationShape } from './lineage';
import { UNKNOWN, isSystemName, type Node } from './lineage-scope';

export interface AnalyzedStatement {
  readonly node: Node;
  readonly lineage: Lineage;
  /** The first function it calls that runs SQL given as text (what that reads is not in the tree). */
  readonly sqlText: string | undefined;
  /** It may change standard_conforming_strings: how the server reads the string literals of what follows. */
  readonly setsStringSyntax: boolean;
  /** The first call in the tree of a function that keeps its arguments where a later statement reads them. */
  readonly storesValues: string | undefined;
}

export type AnalyzedSql =
  /** `missing`: a relation the statement names is not in the catalog (reload it and ask again). */
  | { readonly kind: 'ok'; readonly statements: readonly AnalyzedStatement[]; readonly missing: boolean }
  | { readonly kind: 'error'; readonly message: string };

/**
 * Built-in functions that run SQL given as text, or read a relation given by name (PostgreSQL docs,
 * "Mapping Tables to XML" and "Text Search Functions"): what they read is not in the parse tree.
 */
const SQL_TEXT_FUNCTIONS = new Set([
  'query_to_xml', 'query_to_xmlschema', 'query_to_xml_and_xmlschema', 'table_to_xml', 'table_to_xmlschema', 'table_to_xml_and_xmlschema',
  'schema_to_xml', 'schema_to_xmlschema', 'schema_to_xml_and_xmlschema', 'database_to_xml', 'database_to_xmlschema',
  'database_to_xml_and_xmlschema', 'cursor_to_xml', 'cursor_to_xmlschema', 'ts_stat', 'ts_rewrite',
]);

/**
 * Built-in functions that keep their arguments in server state a later statement (or another session)
 * reads without lineage: settings, notification payloads, sequences, advisory lock keys, large objects.
 */
const VALUE_STORING_FUNCTIONS = new Set([
  'set_config', 'pg_notify', 'setval', 'pg_advisory_lock', 'pg_advisory_lock_shared', 'pg_try_advisory_lock', 'pg_try_advisory_lock_shared',
  'pg_advisory_xact_lock', 'pg_advisory_xact_lock_shared', 'pg_try_advisory_xact_lock', 'pg_try_advisory_xact_lock_shared',
  'lo_from_bytea', 'lo_put', 'lowrite', 'pg_logical_emit_message',
]);

/** The setting that makes backslashes in string literals escapes: the parser here reads them with it on. */
const STRING_SYNTAX_SETTING = 'standard_conforming_strings';

/** Query strings whose analysis is kept per catalog (masked sessions repeat their statements). */
const MAX_CACHED_ANALYSES = 512;
/** Longer strings are analyzed each time rather than kept. */
const MAX_CACHED_SQL_CHARS = 8_192;

const caches = new WeakMap<PgCatalog, { version: number; entries: Map<string, AnalyzedSql> }>();

/**
 * The parse tree and column lineage of every statement of a query string, against one database's
 * catalog; kept until the catalog is reloaded. Strict checks, COPY plans and result masking read it.
 */
export function analyzeSql(sql: string, catalog: PgCatalog): AnalyzedSql {
  let cache = caches.get(catalog);
  if (!cache || cache.version !== catalog.version) {
    cache = { version: catalog.version, entries: new Map() };
    caches.set(catalog, cache);
  }
  const cached = cache.entries.get(sql);
  if (cached) return cached;
  const analyzed = analyze(sql, catalog);
  if (sql.length <= MAX_CACHED_SQL_CHARS) {
    if (cache.entries.size >= MAX_CACHED_ANALYSES) cache.entries.delete(cache.entries.keys().next().value as string);
    cache.entries.set(sql, analyzed);
  }
  return analyzed;
}

function analyze(sql: string, catalog: PgCatalog): AnalyzedSql {
  let nodes: Node[];
  try {
    nodes = (parseSync(sql) as { stmts: { stmt: Node }[] }).stmts.map((s) => s.stmt);
  } catch {
    return { kind: 'error', message: 'twokey: the statement cannot be parsed, so it cannot be masked' };
  }
  let missing = false;
  const lookup = (schema: string | undefined, name: string): readonly RelationShape[] => {
    const found = catalog.lookup(schema, name);
    if (found.length === 0 && !isSystemName(schema, name)) missing = true;
    return found;
  };
  // A function neither built in nor in the catalog (made since it was read): reload, else it may read anything.
  const functions = (schema: string | undefined, name: string): ReadonlySet<string> | undefined => {
    const read = catalog.functionSources(schema, name);
    if (read || catalog.isBuiltinFunction(schema, name)) return read;
    missing = true;
    return UNKNOWN;
  };
  const statements: AnalyzedStatement[] = [];
  for (const node of nodes) {
    try {
      statements.push({ node, lineage: analyzeStatement(node, lookup, functions), sqlText: sqlTextFunction(node), setsStringSyntax: setsStringSyntax(node), storesValues: findCall(node, (name) => VALUE_STORING_FUNCTIONS.has(name)) });
    } catch (e) {
      return { kind: 'error', message: `twokey: ${e instanceof Error ? e.message : String(e)}` };
    }
  }
  return { kind: 'ok', statements, missing };
}

/** The first call in the tree of a function that runs SQL text, or undefined. */
function sqlTextFunction(node: Node): string | undefined {
  return findCall(node, (name) => SQL_TEXT_FUNCTIONS.has(name));
}

/** SET or RESET of the setting, or a set_config() whose first argument is not a literal naming another. */
function setsStringSyntax(node: Node): boolean {
  const set = node.VariableSetStmt as Node | undefined;
  if (set && String(set.name ?? '').toLowerCase() === STRING_SYNTAX_SETTING) return true;
  return findCall(node, (name, call) => {
    if (name !== 'set_config') return false;
    const first = ((call.args as Node[] | undefined) ?? [])[0]?.A_Const as Node | undefined;
    const setting = (first?.sval as Node | undefined)?.sval;
    return typeof setting !== 'string' || setting.toLowerCase() === STRING_SYNTAX_SETTING;
  }) !== undefined;
}

/** The name of the first function call in the tree that `match` accepts, or undefined. */
function findCall(value: unknown, match: (name: string, call: Node) => boolean): string | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  if (Array.isArray(value)) {
    for (const v of value) {
      const found = findCall(v, match);
      if (found) return found;
    }
    return undefined;
  }
  const call = (value as Node).FuncCall as Node | undefined;
  if (call) {
    const names = (call.funcname as Node[] | undefined) ?? [];
    const name = String(((names[names.length - 1]?.String as Node | undefined)?.sval as string | undefined) ?? '');
    if (match(name, call)) return name;
  }
  return findCall(Object.values(value), match);
}
