import type { RowsResult } from './caller-connection';

/**
 * Row values a decided request keeps for `request_status` (kept for up to MAX_TRACKED_EXECUTIONS_PER_CALLER
 * requests per caller, so far less than one answer's MAX_RESULT_BYTES); later rows are dropped and flagged.
 */
export const MAX_TRACKED_RESULT_BYTES = 64 * 1024;

/** A run's result as a tracked request keeps it: rows up to MAX_TRACKED_RESULT_BYTES of values, `truncated` when some were dropped. */
export function trackedResult(r: RowsResult): RowsResult {
  let bytes = 0;
  for (const [i, row] of r.rows.entries()) {
    for (const v of row) bytes += v === null ? 0 : v.length;
    if (bytes > MAX_TRACKED_RESULT_BYTES) return { ...r, rows: r.rows.slice(0, i), truncated: true };
  }
  return r;
}
