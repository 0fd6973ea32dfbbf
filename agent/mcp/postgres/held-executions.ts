import type { RowsResult } from './caller-connection';

/** Requests one caller may have awaiting a decision through MCP (each holds a connection to the listener). */
export const MAX_PENDING_EXECUTIONS_PER_CALLER = 10;
/** Decided requests kept per caller for `request_status` (the oldest are forgotten first). */
export const MAX_TRACKED_EXECUTIONS_PER_CALLER = 100;

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

export type ExecutionStatus = 'pending' | 'approved' | 'denied' | 'expired' | 'failed';

/** A write an MCP caller sent for review, as `execute` and `request_status` report it. */
export interface Execution {
  readonly requestId: string;
  readonly target: string;
  readonly reviewers: readonly string[];
  readonly expiresAt: string;
  status: ExecutionStatus;
  /** Once approved and run: what it returned. */
  result?: unknown;
  /** Once refused: the `twokey:` message (a reviewer's comment included). */
  message?: string;
}

/**
 * The writes each caller (by principal) sent for review through MCP, so that `request_status` answers
 * after `execute` returned `pending_approval`, in this MCP session or a later one. Bounded per caller.
 */
export class HeldExecutions {
  private readonly byCaller = new Map<string, Map<string, Execution>>();
  /** Per caller, `execute` calls under way whose request is not yet tracked (each holds a slot). */
  private readonly starting = new Map<string, number>();

  /**
   * Takes one of the caller's MAX_PENDING_EXECUTIONS_PER_CALLER slots for an `execute` about to start,
   * checked and taken at once so that concurrent calls cannot pass the cap together; undefined when none
   * is free. The returned function frees the slot (once the request is tracked, or the call ended).
   */
  reserve(principal: string): (() => void) | undefined {
    const starting = this.starting.get(principal) ?? 0;
    if (this.pendingCount(principal) + starting >= MAX_PENDING_EXECUTIONS_PER_CALLER) return undefined;
    this.starting.set(principal, starting + 1);
    let freed = false;
    return () => {
      if (freed) return;
      freed = true;
      const left = (this.starting.get(principal) ?? 1) - 1;
      if (left > 0) this.starting.set(principal, left);
      else this.starting.delete(principal);
    };
  }

  private pendingCount(principal: string): number {
    let n = 0;
    for (const e of this.byCaller.get(principal)?.values() ?? []) if (e.status === 'pending') n++;
    return n;
  }

  track(principal: string, execution: Execution): void {
    const mine = this.byCaller.get(principal) ?? new Map<string, Execution>();
    this.byCaller.set(principal, mine);
    mine.set(execution.requestId, execution);
    for (const [id, e] of mine) {
      if (mine.size <= MAX_TRACKED_EXECUTIONS_PER_CALLER) break;
      if (e.status !== 'pending') mine.delete(id);
    }
  }

  get(principal: string, requestId: string): Execution | undefined {
    return this.byCaller.get(principal)?.get(requestId);
  }
}
