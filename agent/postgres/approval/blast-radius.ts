import { parseSync, scanSync } from 'libpg-query';
import { classifySql } from '../classify/classify';

type Node = Record<string, unknown>;

/**
 * A read-only stand-in for a write, so that the planner can estimate how many rows it touches:
 * `UPDATE t SET ... WHERE c` and `DELETE FROM t WHERE c` become `SELECT 1 FROM t WHERE c`. The read
 * role may not EXPLAIN the write itself (PostgreSQL checks UPDATE/DELETE privileges even for a plain
 * EXPLAIN). Returns undefined for anything else; `rows` when the count is known without planning.
 */
export function countingQuery(sql: string): { select: string } | { rows: number } | undefined {
  let tree: { stmts?: { stmt?: Node; stmt_location?: number; stmt_len?: number }[] };
  try {
    tree = parseSync(sql) as typeof tree;
  } catch {
    return undefined;
  }
  const only = tree.stmts?.length === 1 ? tree.stmts[0] : undefined;
  const [type, body] = Object.entries(only?.stmt ?? {})[0] ?? [];
  const b = body as Node | undefined;
  if (!b || b.withClause !== undefined) return undefined;
  if (type === 'InsertStmt') {
    const values = ((b.selectStmt as Node | undefined)?.SelectStmt as Node | undefined)?.valuesLists as unknown[] | undefined;
    return values ? { rows: values.length } : undefined;
  }
  if ((type !== 'UpdateStmt' && type !== 'DeleteStmt') || b.fromClause !== undefined || b.usingClause !== undefined) return undefined;
  const rel = b.relation as Node;
  const quote = (s: string): string => `"${s.replace(/"/g, '""')}"`;
  const name = `${typeof rel.schemaname === 'string' ? `${quote(rel.schemaname)}.` : ''}${quote(String(rel.relname))}`;
  const alias = ((rel.alias as Node | undefined)?.aliasname as string | undefined) ?? undefined;
  let where = '';
  if (b.whereClause !== undefined) {
    const tokens = (scanSync(sql) as { tokens: { start: number; end: number; text: string; keywordName: string }[] }).tokens;
    let depth = 0;
    let from = -1;
    let to = sql.length;
    for (const t of tokens) {
      if (t.text === '(' || t.text === '[') depth++;
      else if (t.text === ')' || t.text === ']') depth--;
      else if (depth === 0 && t.keywordName === 'RESERVED_KEYWORD') {
        const word = t.text.toUpperCase();
        if (word === 'WHERE' && from < 0) from = t.end;
        else if (word === 'RETURNING' && from >= 0) to = t.start;
      } else if (depth === 0 && t.text === ';') to = Math.min(to, t.start);
    }
    if (from < 0) return undefined;
    where = ` WHERE ${sql.slice(from, to).trim()}`;
  }
  const select = `SELECT 1 FROM ${name}${alias ? ` AS ${quote(alias)}` : ''}${where}`;
  const check = classifySql(select);
  // One plain SELECT or nothing: the estimate must never be a way to run something else.
  return check.statementCount === 1 && (check.class === 'read' || check.class === 'write') ? { select } : undefined;
}

/** Reads the planner's row estimate out of `EXPLAIN (FORMAT JSON)` output. */
export function planRows(explainJson: string): number | undefined {
  try {
    const plan = (JSON.parse(explainJson) as { Plan?: { 'Plan Rows'?: number } }[])[0]?.Plan;
    return typeof plan?.['Plan Rows'] === 'number' ? plan['Plan Rows'] : undefined;
  } catch {
    return undefined;
  }
}
