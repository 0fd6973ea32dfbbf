import { parseSync } from 'libpg-query';
import type { PgCatalog } from './catalog';
import { analyzeStatement, type Lineage, type RelationShape } from './lineage';
import type { Node } from './lineage-scope';

export interface AnalyzedStatement {
  readonly node: Node;
  readonly lineage: Lineage;
}

export type AnalyzedSql =
  /** `missing`: a relation the statement names is not in the catalog (reload it and ask again). */
  | { readonly kind: 'ok'; readonly statements: readonly AnalyzedStatement[]; readonly missing: boolean }
  | { readonly kind: 'error'; readonly message: string };

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
  const statements: AnalyzedStatement[] = [];
  for (const node of nodes) {
    try {
      statements.push({ node, lineage: analyzeStatement(node, lookup, catalog.functionSources) });
    } catch (e) {
      return { kind: 'error', message: `twokey: ${e instanceof Error ? e.message : String(e)}` };
    }
  }
  return { kind: 'ok', statements, missing };
}

function isSystemName(schema: string | undefined, name: string): boolean {
  return schema === 'pg_catalog' || schema === 'information_schema' || name.startsWith('pg_');
}
