/** Requests one caller may have awaiting a decision through MCP (each holds a connection to the listener). */
export const MAX_PENDING_EXECUTIONS_PER_CALLER = 10;
/** Decided requests kept per caller for `request_status` (the oldest are forgotten first). */
export const MAX_TRACKED_EXECUTIONS_PER_CALLER = 100;

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

  pendingCount(principal: string): number {
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
