/**
 * The scopes column lineage resolves names in (SQL's FROM items, CTEs, outer queries), and the parse
 * tree accessors it reads libpg-query's JSON with.
 */
import { UNKNOWN_SOURCE } from '../../../core/masking/profile';

export type Node = Record<string, unknown>;

export interface Column {
  readonly name: string;
  readonly sources: ReadonlySet<string>;
  readonly plain: boolean;
}

export interface ScopeItem {
  readonly alias: string;
  readonly columns: readonly Column[];
  /** Columns cannot be known (a function in FROM, an unknown relation): lookups fall back to names. */
  readonly opaque: boolean;
  /** Of an opaque item: sources that may flow into any of its columns (a function's arguments). */
  readonly derived?: ReadonlySet<string>;
}

export interface Scope {
  readonly items: ScopeItem[];
  readonly outer: Scope | undefined;
  readonly ctes: Map<string, readonly Column[]>;
}

export const EMPTY: ReadonlySet<string> = new Set();
export const UNKNOWN: ReadonlySet<string> = new Set([UNKNOWN_SOURCE]);
/**
 * System relations that show values of user columns (the planner's statistics: most common values,
 * histogram bounds).
 */
const STATISTICS_RELATIONS = new Set(['pg_stats', 'pg_stats_ext', 'pg_stats_ext_exprs', 'pg_statistic', 'pg_statistic_ext_data']);

/** A system catalog or view: not in the agent's catalog of user relations, by design. */
export function isSystemName(schema: string | undefined, name: string): boolean {
  return schema === 'pg_catalog' || schema === 'information_schema' || name.startsWith('pg_');
}

/**
 * What a relation the catalog does not know may show: a system relation nothing of the user's data
 * (but the statistics), any other (a temporary table, one created since the catalog was read) anything.
 */
export function unknownRelationSources(schema: string | undefined, name: string): ReadonlySet<string> {
  return isSystemName(schema, name) && !STATISTICS_RELATIONS.has(name) ? EMPTY : UNKNOWN;
}

export function renameColumns(columns: readonly Column[], alias: Node | undefined): Column[] {
  const names = list(alias?.colnames).map(stringValue);
  return columns.map((c, i) => (names[i] ? { ...c, name: names[i] } : c));
}

/** Every source an item's columns show (an opaque item's: what flows into it). */
export function itemSources(item: ScopeItem): ReadonlySet<string>[] {
  return item.opaque ? [item.derived ?? UNKNOWN] : item.columns.map((c) => c.sources);
}

export function commonColumnNames(left: readonly ScopeItem[], right: readonly ScopeItem[]): string[] {
  const l = new Set(left.flatMap((i) => i.columns.map((c) => c.name)));
  return [...new Set(right.flatMap((i) => i.columns.map((c) => c.name)))].filter((n) => l.has(n));
}

export function union(...sets: ReadonlySet<string>[]): Set<string> {
  const out = new Set<string>();
  for (const s of sets) for (const v of s) out.add(v);
  return out;
}

export function only(node: Node): [string | undefined, Node] {
  const key = Object.keys(node)[0];
  return [key, (key ? asNode(node[key]) : undefined) ?? {}];
}

export function asNode(v: unknown): Node | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Node) : undefined;
}

export function list(v: unknown): Node[] {
  return Array.isArray(v) ? (v as Node[]) : [];
}

export function stringValue(n: Node): string {
  const s = asNode(n.String);
  return s ? String(s.sval ?? '') : '';
}
