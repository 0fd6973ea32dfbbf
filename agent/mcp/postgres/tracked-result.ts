import { MAX_TRACKED_RESULT_BYTES } from '../held-executions';
import type { RowsResult } from './caller-connection';

/** A run's result as a tracked request keeps it: rows up to MAX_TRACKED_RESULT_BYTES of values, `truncated` when some were dropped. */
export function trackedResult(r: RowsResult): RowsResult {
  let bytes = 0;
  for (const [i, row] of r.rows.entries()) {
    for (const v of row) bytes += v === null ? 0 : v.length;
    if (bytes > MAX_TRACKED_RESULT_BYTES) return { ...r, rows: r.rows.slice(0, i), truncated: true };
  }
  return r;
}
