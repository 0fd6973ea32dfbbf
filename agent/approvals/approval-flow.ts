import { principalKey, type Identity } from '../../core/identity/identity';
import { requesterOf, type ApprovalAsk, type ApprovalKind } from '../../core/approval/request';
import type { Decision } from '../../core/policy/decide';
import type { ActionClass } from '../../core/policy/schema';
import { MAX_APPROVAL_TEXT_BYTES } from '../../core/tunnel/messages';
import type { ApprovalEvent } from '../sessions/events';
import { newRequestId, type DecisionMessage, type SubmitResult } from './approval-client';

/** A held action waits this much longer than its request, so that the control plane's expiry arrives as a decision. */
export const HOLD_GRACE_SECONDS = 5;
/** The longest write window a caller may ask for. */
export const MAX_WINDOW_MINUTES = 24 * 60;

/** What the flow needs of the approval client (the tunnel's side of approvals; it keeps grants and windows). */
export interface ApprovalGate {
  windowOpen(principal: string, target: string): boolean;
  takeOneTimeGrant(principal: string, target: string, sha256: string): boolean;
  submit(ask: ApprovalAsk): Promise<SubmitResult>;
  waitForDecision(requestId: string, holdMs: number, signal?: AbortSignal): Promise<DecisionMessage | undefined>;
}

/** One action the policy sends for approval, as the protocol understood it. */
export interface ApprovalQuestion {
  readonly kind: ApprovalKind;
  readonly windowMinutes?: number;
  readonly target: string;
  readonly protocol: string;
  readonly identity: Identity;
  /** How the caller came, when not with the protocol's own client (shown to reviewers). */
  readonly via?: string;
  /** What the reviewer reads (and, for statements and scripts, what runs once approved). */
  readonly text: string;
  readonly params?: readonly (string | null)[];
  /** The protocol's hash of what runs (a grant is redeemed by the same hash). */
  readonly sha256: string;
  readonly class: ActionClass;
  readonly decision: Extract<Decision, { kind: 'approve' }>;
  /** The caller's stated reason, if any. */
  readonly reason: string | undefined;
  /** What the action would touch, estimated only when a request is actually sent (best effort). */
  readonly blastRadius?: () => Promise<string>;
}

/** How the protocol words what is its own: the noun for the action and the hints it shows. */
export interface ApprovalWording {
  /** `statement`, `command`, `request`. */
  readonly noun: string;
  /** How to give a reason in this protocol. */
  readonly reasonHint: string;
  /** How to send an action too large for a review, or undefined. */
  readonly tooLargeAdvice?: string;
}

/** The end of the flow: run once on the write credential, a window opened, or refused. Each protocol renders it. */
export type ApprovalOutcome =
  | { readonly kind: 'run'; readonly notice: string }
  | { readonly kind: 'window-opened'; readonly notice: string }
  | { readonly kind: 'refused'; readonly message: string; readonly hint?: string };

/** Sent for review: the caller is told the request id now, the outcome follows. */
export interface PendingApproval {
  readonly kind: 'pending';
  readonly requestId: string;
  readonly notice: string;
  readonly outcome: Promise<ApprovalOutcome>;
}

export interface ApprovalFlowOptions {
  readonly gate: ApprovalGate;
  /** Approval events for the session's recording. */
  readonly record?: (e: ApprovalEvent) => void;
  /** Aborted when the session ends: the wait stops. */
  readonly signal?: AbortSignal;
}

const refused = (message: string, hint?: string): ApprovalOutcome => ({ kind: 'refused', message, hint });

/**
 * The protocol-neutral approval flow: a write window or a one-time grant runs at once; otherwise the
 * reason and size rules are checked, the request is submitted and the outcome awaited (its timeout
 * plus HOLD_GRACE_SECONDS). Every step returns a value the protocol renders; nothing here writes to a
 * socket. Grants and windows are the caller's principal's (issuer and subject), on one target.
 */
export async function askApproval(q: ApprovalQuestion, wording: ApprovalWording, options: ApprovalFlowOptions): Promise<ApprovalOutcome | PendingApproval> {
  const { gate } = options;
  const principal = principalKey(q.identity);
  // A window was approved under the rule for writes: other classes (ddl, admin, unknown) may need other reviewers.
  if (q.kind !== 'window' && q.class === 'write' && gate.windowOpen(principal, q.target)) {
    return { kind: 'run', notice: 'twokey: running on the write credential inside your approved write window' };
  }
  if (q.kind !== 'window' && gate.takeOneTimeGrant(principal, q.target, q.sha256)) {
    return { kind: 'run', notice: `twokey: running once under the approval given earlier for this exact ${wording.noun}` };
  }
  const approval = q.decision.approval;
  if (approval.requireReason && !q.reason) return refused(`twokey: this ${wording.noun} needs a reason before it can be sent for approval`, wording.reasonHint);
  if (Buffer.byteLength(q.text) > MAX_APPROVAL_TEXT_BYTES) {
    return refused(`twokey: ${wording.noun}s over ${MAX_APPROVAL_TEXT_BYTES} bytes cannot be sent for approval${wording.tooLargeAdvice ? `; ${wording.tooLargeAdvice}` : ''}`);
  }
  const requestId = newRequestId();
  const blastRadius = q.blastRadius ? await q.blastRadius().catch(() => 'unknown') : undefined;
  const submitted = await gate.submit({
      requestId,
      kind: q.kind,
      windowMinutes: q.windowMinutes,
      target: q.target,
      protocol: q.protocol,
      text: q.text,
      params: q.params,
      sha256: q.sha256,
      class: q.class,
      rule: q.decision.rule,
      requester: requesterOf(q.identity),
      via: q.via,
      reason: q.reason,
      blastRadius,
      approval: { groups: approval.groups, min: approval.min, timeoutSeconds: approval.timeoutSeconds },
    });
  if (!submitted.ok) return refused(`twokey: approval required but unavailable: ${submitted.reason}`);
  options.record?.({ requestId, outcome: 'requested', reviewers: [] });
  // Waiting starts now, in this turn: a decision that arrived before anyone waited would become a grant instead.
  const decided = gate.waitForDecision(requestId, (approval.timeoutSeconds + HOLD_GRACE_SECONDS) * 1000, options.signal);
  return {
    kind: 'pending',
    requestId,
    notice: pendingNotice(requestId, approval.groups, approval.timeoutSeconds),
    outcome: decided.then((decision): ApprovalOutcome => {
      if (!decision) {
        return refused(noDecisionMessage(requestId, approval.timeoutSeconds), `The request stays open: once approved, sending the identical ${wording.noun} runs it once.`);
      }
      options.record?.({ requestId, outcome: decision.outcome, reviewers: decision.decidedBy });
      if (decision.outcome !== 'approved') {
        const who = decision.decidedBy.length ? ` by ${decision.decidedBy.join(', ')}` : '';
        return refused(`twokey: request ${requestId} ${decision.outcome}${who}${decision.comment ? `: ${decision.comment}` : ''}`);
      }
      const by = decision.decidedBy.join(', ');
      if (q.kind === 'window') {
        return { kind: 'window-opened', notice: `twokey: request ${requestId} approved by ${by}; writes on ${q.target} run on the write credential until ${decision.validUntil}` };
      }
      return { kind: 'run', notice: `twokey: request ${requestId} approved by ${by}; running it once on the write credential` };
    }),
  };
}

/** What a caller is told when a request is sent for review (clients read the request id from it). */
export function pendingNotice(requestId: string, groups: readonly string[], timeoutSeconds: number): string {
  return `twokey: approval required, request ${requestId}, sent to ${groups.join(', ')}, waiting up to ${timeoutSeconds}s`;
}

/** The request id, reviewer groups and wait of a `pendingNotice`, for a client in this process (MCP) that sees only the text. */
export function parsePendingNotice(text: string): { requestId: string; groups: string[]; timeoutSeconds: number } | undefined {
  const m = /^twokey: approval required, request ([0-9a-f-]{36}), sent to (.+), waiting up to (\d+)s$/.exec(text);
  return m ? { requestId: m[1] as string, groups: (m[2] as string).split(', '), timeoutSeconds: Number(m[3]) } : undefined;
}

const NO_DECISION = 'twokey: no decision on request';

/** What a caller is told when no decision arrived within the request's timeout and the hold's grace. */
export function noDecisionMessage(requestId: string, timeoutSeconds: number): string {
  return `${NO_DECISION} ${requestId} within ${timeoutSeconds}s`;
}

/**
 * The outcome a refusal of a request names (`denied`, `expired`, ...), from its message. No decision
 * within the timeout and grace is `expired`: the control plane expires the request at its timeout,
 * so its expiry was only late to arrive (the tunnel down or slow).
 */
export function refusedOutcomeOf(message: string, requestId: string): string | undefined {
  if (message.startsWith(`${NO_DECISION} ${requestId} within `)) return 'expired';
  const prefix = `twokey: request ${requestId} `;
  return message.startsWith(prefix) ? /^[a-z-]+/.exec(message.slice(prefix.length))?.[0] : undefined;
}

/** Why a caller's request for a write window is not sent: a malformed request, or the policy's answer. */
export interface WindowRequestProblem {
  readonly kind: 'invalid' | 'policy';
  readonly message: string;
}

/** A caller's request for a write window, checked before it is sent: the problem, or undefined. */
export function windowRequestProblem(minutes: number, decision: Decision): WindowRequestProblem | undefined {
  if (!Number.isInteger(minutes) || minutes < 1 || minutes > MAX_WINDOW_MINUTES) return { kind: 'invalid', message: `twokey: a write window is 1 to ${MAX_WINDOW_MINUTES} minutes` };
  if (decision.kind === 'allow') return { kind: 'policy', message: 'twokey: writes on this target need no approval' };
  if (decision.kind === 'deny') return { kind: 'policy', message: `twokey: ${decision.reason}` };
  return undefined;
}
