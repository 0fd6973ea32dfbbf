import { refusedOutcomeOf } from '../approvals/approval-flow';
import type { HeldRequest } from '../sessions/channels';
import { z } from 'zod';
import { principalKey } from '../../core/identity/identity';
import { refusal, tool, type McpTool, type ToolOutcome } from './tool-registry';

/** Requests one caller may have awaiting a decision through MCP (each holds a connection to the listener). */
export const MAX_PENDING_EXECUTIONS_PER_CALLER = 10;
/** Decided requests kept per caller for `request_status` (the oldest are forgotten first). */
export const MAX_TRACKED_EXECUTIONS_PER_CALLER = 100;
/**
 * Decided requests kept over all callers (the oldest forgotten first, whoever's): with
 * MAX_TRACKED_RESULT_BYTES each, the status tools' memory stays within about 64 MiB however many
 * callers there are. Pending requests are never forgotten (each caller has at most
 * MAX_PENDING_EXECUTIONS_PER_CALLER).
 */
export const MAX_TRACKED_EXECUTIONS = 1_000;

/**
 * What a decided request keeps of its result for the status tools (kept for up to
 * MAX_TRACKED_EXECUTIONS_PER_CALLER requests per caller, so far less than one answer); the call that
 * waited got it whole.
 */
export const MAX_TRACKED_RESULT_BYTES = 64 * 1024;

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
  /** Every tracked request in the order it was tracked, with its caller: the oldest are forgotten first. */
  private readonly everyone = new Map<Execution, string>();
  /** Per caller, calls under way whose request is not yet tracked (each holds a slot). */
  private readonly starting = new Map<string, number>();

  /**
   * Takes one of the caller's MAX_PENDING_EXECUTIONS_PER_CALLER slots for a held action about to start,
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
    this.everyone.set(execution, principal);
    for (const e of mine.values()) {
      if (mine.size <= MAX_TRACKED_EXECUTIONS_PER_CALLER) break;
      if (e.status !== 'pending') this.forget(e, principal);
    }
    for (const [e, caller] of this.everyone) {
      if (this.everyone.size <= MAX_TRACKED_EXECUTIONS) break;
      if (e.status !== 'pending') this.forget(e, caller);
    }
  }

  private forget(execution: Execution, principal: string): void {
    this.everyone.delete(execution);
    const theirs = this.byCaller.get(principal);
    theirs?.delete(execution.requestId);
    if (theirs?.size === 0) this.byCaller.delete(principal);
  }

  get(principal: string, requestId: string): Execution | undefined {
    return this.byCaller.get(principal)?.get(requestId);
  }
}

/**
 * Runs a held action with one of the caller's slots taken (refused when MAX_PENDING_EXECUTIONS_PER_CALLER
 * are awaiting review); the slot is freed once `run` answered, when a request it sent is tracked as pending.
 */
export async function withHeldSlot(held: HeldExecutions, principal: string, run: () => Promise<ToolOutcome>): Promise<ToolOutcome> {
  const slot = held.reserve(principal);
  if (!slot) return refusal('deny', `twokey: you have ${MAX_PENDING_EXECUTIONS_PER_CALLER} requests awaiting review through MCP, the most one caller may`);
  try {
    return await run();
  } finally {
    slot();
  }
}

const pendingJson = (e: Execution) => ({ status: 'pending_approval', request_id: e.requestId, reviewers: e.reviewers, expires_at: e.expiresAt });

/** A protocol's status tool (`request_status`, `ssh_request_status`, ...): the state of one of the caller's requests on a target. */
export function requestStatusTool(name: string, description: string, held: HeldExecutions, available: McpTool['available']): McpTool {
  return tool({
    name,
    description,
    args: z.strictObject({ request_id: z.string().uuid() }),
    available,
    call: async (args, call) => statusOutcome(held.get(principalKey(call.identity), args.request_id), args.request_id, call.target.name),
  });
}

/** A status tool's answer for one of the caller's requests on a target (any protocol's). */
function statusOutcome(e: Execution | undefined, requestId: string, target: string): ToolOutcome {
  if (!e || e.target !== target) return { ok: false, decision: 'error', message: `twokey: no request ${requestId} of yours through MCP on ${target}` };
  if (e.status === 'pending') return { ok: true, decision: 'approve', result: pendingJson(e), summary: `pending ${e.requestId}` };
  return { ok: true, decision: 'approve', result: { status: e.status, request_id: e.requestId, ...(e.message ? { message: e.message } : {}), ...(e.result ? { result: e.result } : {}) }, summary: `${e.status} ${e.requestId}` };
}

/**
 * One call's held action as its toolset follows it: `sent` once the listener says its request went to
 * reviewers (tracked as pending from then, for the status tools), then how it ended. Every protocol's
 * toolset (Postgres, SSH, Kubernetes) reports through this, so their statuses mean the same.
 */
export class HeldAction {
  private execution: Execution | undefined;
  private resolvePending: (e: Execution) => void = () => undefined;
  /** Resolves when the request is sent for review. */
  readonly pending = new Promise<Execution>((resolve) => (this.resolvePending = resolve));

  constructor(
    private readonly held: HeldExecutions,
    private readonly principal: string,
    private readonly target: string,
  ) {}

  /** The request id, once the listener sent one for review. */
  get requestId(): string | undefined {
    return this.execution?.requestId;
  }

  /** The listener sent the request for review; false when this action's request was already known (one per call). */
  sent(request: HeldRequest): boolean {
    if (this.execution) return false;
    const expiresAt = new Date(Date.now() + request.timeoutSeconds * 1000).toISOString();
    this.execution = { requestId: request.requestId, target: this.target, reviewers: [...request.groups], expiresAt, status: 'pending' };
    this.held.track(this.principal, this.execution);
    this.resolvePending(this.execution);
    return true;
  }

  /** The action ran (approved, when it was held): `tracked` is what the status tool keeps of its result. */
  ran(tracked: unknown): void {
    if (this.execution) Object.assign(this.execution, { status: 'approved', result: tracked });
  }

  /** The action was refused with a `twokey:` message: denied or expired by its reviewers, or failed. */
  refused(message: string): void {
    if (this.execution) Object.assign(this.execution, { status: refusedStatus(refusedOutcomeOf(message, this.execution.requestId)), message });
  }

  /** The action could not finish (its connection failed, it ran too long): failed, whatever its message says. */
  failed(message: string): void {
    if (this.execution) Object.assign(this.execution, { status: 'failed', message });
  }
}

/**
 * A held action's tool answer: its end when it ends before a request is sent; once `pending` says the
 * request is out, its end within `waitSeconds`, or else `pending_approval` (the action waits on).
 */
export async function answerWithin(settled: Promise<ToolOutcome>, pending: Promise<Execution>, waitSeconds: number): Promise<ToolOutcome> {
  const first = await Promise.race([settled, pending]);
  if ('ok' in first) return first;
  const waited = await Promise.race([settled, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), waitSeconds * 1000).unref())]);
  if (waited) return waited;
  return { ok: true, decision: 'approve', result: pendingJson(first), summary: `pending_approval ${first.requestId}` };
}

/** A refused request's status from the outcome its `twokey:` message names. */
function refusedStatus(outcome: string | undefined): ExecutionStatus {
  return outcome === 'denied' || outcome === 'expired' ? outcome : 'failed';
}
