import { randomBytes } from 'node:crypto';
import { signLinkToken, verifyLinkToken } from '../../core/approval/link-token';
import type { ApprovalAsk, ApprovalRecord } from '../../core/approval/request';
import { reviewersFor, type Reviewer } from '../../core/approval/reviewers';
import { oneLine } from '../../core/approval/visible-text';
import { evaluateVotes } from '../../core/approval/votes';
import { principalKey, type Identity } from '../../core/identity/identity';
import { targetsOfAgent } from '../../core/policy/decide';
import { TUNNEL_PROTOCOL_VERSION, type ControlMessage } from '../../core/tunnel/messages';
import { approvalMail } from './approval-mail';
import { messagePage, reviewPage } from './approval-page';
import { parseStoredPolicy } from './policies';
import { policyChangeMail } from './policy-change-notices';
import { policyChangePage } from './policy-change-page';
import { applyPolicyChange } from './policy-changes';
import type { ApprovalPage } from '../store/approval-store';
import { DEFAULT_PAGE_ITEMS } from '../store/page-token';
import type { ControlPlaneDeps } from './deps';
import { reviewSignIn, signInRefusal } from './reviewer-sign-in';

/** How long an approval stays usable once decided (a one-time grant when the caller had left). */
/** The one answer to a link that is not valid, whatever was wrong with it (nothing more is said). */
const INVALID_LINK: PageResult = { status: 403, html: messagePage('Invalid link', 'This approval link is not valid. Nothing was changed.') };

export const GRANT_VALIDITY_SECONDS = 3600;
/** A reviewer's comment, in UTF-16 units: it must fit the decision message's 1024. */
export const MAX_COMMENT_CHARS = 1000;
/** Leaves the workflow a moment to start waiting before the timeout counts from a restart. */
const MIN_REMAINING_WAIT_SECONDS = 1;

function errorReply(requestId: string, code: string, message: string): ControlMessage {
  return { type: 'error', v: TUNNEL_PROTOCOL_VERSION, code, message, inReplyTo: requestId };
}

/**
 * An agent asks for approval. The control plane checks that the agent serves the target, stores the
 * request (idempotent on its id) and starts the workflow execution named by the id.
 */
export async function intakeApproval(deps: ControlPlaneDeps, agent: string, ask: ApprovalAsk): Promise<ControlMessage> {
  const policy = await deps.policies.latest();
  const parsed = policy ? parseStoredPolicy(policy) : undefined;
  if (!parsed?.ok || !targetsOfAgent(parsed.value, agent).includes(ask.target)) {
    deps.log.warn('approval.refused', { agent, target: ask.target, requestId: ask.requestId, reason: 'agent does not serve target' });
    return errorReply(ask.requestId, 'target-not-served', `agent ${agent} does not serve ${ask.target}`);
  }
  const selected = reviewersFor(parsed.value, ask.approval.groups, ask.approval.min, ask.requester);
  if (!selected.ok) {
    deps.log.warn('approval.refused', { agent, target: ask.target, requestId: ask.requestId, reason: selected.error.code });
    return errorReply(ask.requestId, selected.error.code, selected.error.message);
  }
  const reviewers = selected.value;
  const now = deps.clock();
  const record: ApprovalRecord = {
    ...ask,
    agent,
    status: 'pending',
    reviewers,
    votes: {},
    createdAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + ask.approval.timeoutSeconds * 1000).toISOString(),
    linksSent: false,
    delivered: false,
  };
  const created = await deps.approvals.create(record);
  const stored = created === 'created' ? record : await deps.approvals.get(ask.requestId);
  // A retried request is the same action by the same person; anything else reusing the id is refused.
  if (!stored || stored.agent !== agent || stored.sha256 !== ask.sha256 || principalKey(stored.requester) !== principalKey(ask.requester)) {
    return errorReply(ask.requestId, 'request-conflict', 'a different request with this id exists');
  }
  await deps.workflow.start(ask.requestId);
  deps.log.info('approval.requested', { requestId: ask.requestId, agent, target: ask.target, requester: principalKey(ask.requester), class: ask.class });
  return {
    type: 'approval.pending',
    v: TUNNEL_PROTOCOL_VERSION,
    requestId: ask.requestId,
    reviewers: reviewers.length,
    groups: [...ask.approval.groups],
    expiresAt: stored.expiresAt,
  };
}

/** Workflow step 1: the request is pending; how long to wait for reviewers from now. */
export async function recordPending(deps: Pick<ControlPlaneDeps, 'approvals' | 'clock'>, requestId: string): Promise<{ status: string; kind: string; timeoutSeconds: number }> {
  const record = await deps.approvals.get(requestId);
  if (!record) throw new Error(`approval ${requestId} not found`);
  const remaining = Math.ceil((Date.parse(record.expiresAt) - deps.clock().getTime()) / 1000);
  return { status: record.status, kind: record.kind, timeoutSeconds: Math.max(MIN_REMAINING_WAIT_SECONDS, remaining) };
}

/** Workflow step 2: keep the task token here and send each reviewer a link of their own (once). */
export async function notifyReviewers(deps: ControlPlaneDeps, requestId: string, taskToken: string): Promise<void> {
  await deps.approvals.setTaskToken(requestId, taskToken);
  const record = await deps.approvals.get(requestId);
  if (!record || record.status !== 'pending' || record.linksSent) return;
  const key = await deps.linkKey();
  const exp = Math.floor(Date.parse(record.expiresAt) / 1000);
  for (const reviewer of record.reviewers) {
    const token = signLinkToken({ requestId, reviewer: principalKey(reviewer), exp, nonce: randomBytes(9).toString('base64url') }, key);
    const link = `${deps.publicUrl}/approvals/review?t=${encodeURIComponent(token)}`;
    await deps.mailer.send(record.kind === 'policy-change' ? policyChangeMail(record, reviewer, link) : approvalMail(record, reviewer, link));
  }
  await deps.approvals.markLinksSent(requestId);
  deps.log.info('approval.notified', { requestId, reviewers: record.reviewers.length });
}

/** Workflow step 3: the outcome, recorded once (a reviewer's vote may have recorded it already). */
export async function recordOutcome(deps: Pick<ControlPlaneDeps, 'approvals' | 'clock' | 'log'>, requestId: string, outcome: 'approved' | 'denied' | 'expired' | 'failed'): Promise<void> {
  const changed = await deps.approvals.finalize(requestId, outcome, deps.clock().toISOString());
  if (changed) deps.log.info('approval.decided', { requestId, outcome });
}

export function decisionMessage(record: ApprovalRecord): ControlMessage | undefined {
  // A policy change is no agent's to run: the control plane applies it (applyPolicyChange).
  if (record.status === 'pending' || record.status === 'emergency' || record.kind === 'policy-change') return undefined;
  const decidedAt = Date.parse(record.decidedAt ?? record.expiresAt);
  const validUntil = record.kind === 'window' ? decidedAt + (record.windowMinutes ?? 0) * 60_000 : Math.max(Date.parse(record.expiresAt), decidedAt + GRANT_VALIDITY_SECONDS * 1000);
  const votes = Object.values(record.votes);
  return {
    type: 'approval.decision',
    v: TUNNEL_PROTOCOL_VERSION,
    requestId: record.requestId,
    outcome: record.status,
    decidedBy: votes.filter((v) => (record.status === 'denied' ? v.decision === 'deny' : v.decision === 'approve')).map((v) => v.reviewer.email),
    comment: votes.find((v) => v.comment)?.comment,
    kind: record.kind,
    target: record.target,
    issuer: record.requester.issuer,
    subject: record.requester.subject,
    sha256: record.sha256,
    validUntil: new Date(validUntil).toISOString(),
  };
}

/** Workflow step 4: tell the agent. An agent that is not connected gets it on its next hello. */
export async function notifyAgent(deps: ControlPlaneDeps, requestId: string): Promise<void> {
  const record = await deps.approvals.get(requestId);
  const message = record && decisionMessage(record);
  if (!record || !message) return;
  const connections = await deps.connections.listForAgent(record.agent);
  for (const c of connections) {
    const sent = await deps.push(c.connectionId, message).catch(() => 'gone' as const);
    if (sent === 'gone') await deps.connections.delete(c.connectionId);
  }
}

/** Decisions an agent has not acknowledged yet, for its hello. */
export async function undeliveredDecisions(deps: Pick<ControlPlaneDeps, 'approvals'>, agent: string): Promise<ControlMessage[]> {
  const records = await deps.approvals.undelivered(agent);
  return records.map(decisionMessage).filter((m): m is ControlMessage => m !== undefined);
}

export interface PageResult {
  readonly status: number;
  readonly html: string;
}

/** GET on a link: the request and a form. Never changes anything (mail scanners prefetch links). */
export async function reviewLinkPage(deps: ControlPlaneDeps, token: string, cookies?: readonly string[]): Promise<PageResult> {
  const checked = await checkLink(deps, token);
  if ('page' in checked) return checked.page;
  const { record, reviewer } = checked;
  if (record.status !== 'pending') return { status: 409, html: messagePage('Already decided', `This request is ${record.status}. Nothing was changed.`) };
  const mine = record.votes[principalKey(reviewer)];
  if (mine) return { status: 409, html: messagePage('Already recorded', `Your ${mine.decision} was recorded. Nothing was changed.`) };
  const signIn = await reviewSignIn(deps, record, reviewer, token, cookies);
  return { status: 200, html: record.kind === 'policy-change' ? policyChangePage(record, reviewer, token, signIn) : reviewPage(record, reviewer, token, signIn) };
}

/** POST on a link: one vote by the reviewer the link was made for. */
export async function voteFromLink(deps: ControlPlaneDeps, token: string, decision: string | undefined, comment: string | undefined, cookies?: readonly string[]): Promise<PageResult> {
  if (decision !== 'approve' && decision !== 'deny') return { status: 400, html: messagePage('Choose approve or deny', 'The form was incomplete. Nothing was changed.') };
  const checked = await checkLink(deps, token);
  if ('page' in checked) return checked.page;
  const { record, reviewer } = checked;
  const refused = await signInRefusal(deps, record, reviewer, cookies);
  if (refused) return refused;
  const result = await castVote(deps, record, reviewer, decision, comment);
  switch (result.kind) {
    case 'duplicate':
      return { status: 409, html: messagePage('Already recorded', 'Your vote on this request was recorded before. Nothing was changed.') };
    case 'closed':
      return { status: 409, html: messagePage('Already decided', 'This request is no longer pending. Nothing was changed.') };
    case 'not-a-reviewer':
      return INVALID_LINK;
    case 'decided': {
      const next =
        record.kind === 'policy-change' ? (result.outcome === 'approved' ? 'The change is applied now, if the version it replaces is still current.' : 'The policy stays as it is.') : "The requester's agent is told now.";
      return { status: 200, html: messagePage(result.outcome === 'approved' ? 'Approved' : 'Denied', `Request ${record.requestId} is ${result.outcome}. ${next}`) };
    }
    case 'recorded':
      return { status: 200, html: messagePage('Vote recorded', `Your ${decision} is recorded: ${result.approvals} of ${record.approval.min} approvals so far.`) };
  }
}

export type VoteResult =
  | { readonly kind: 'duplicate' | 'closed' | 'not-a-reviewer' }
  | { readonly kind: 'decided'; readonly outcome: 'approved' | 'denied' }
  | { readonly kind: 'recorded'; readonly approvals: number };

/**
 * One vote by a reviewer of the request, whatever carried it (a link, a Slack button): counted once
 * per principal, and when it decides the request, the workflow (or, without one, the agent) is told.
 * Only a principal among the request's reviewers votes (never the requester: reviewersFor left them
 * out), whichever way the carrier resolved them.
 */
export async function castVote(deps: ControlPlaneDeps, record: ApprovalRecord, reviewer: Reviewer, decision: 'approve' | 'deny', comment: string | undefined): Promise<VoteResult> {
  const key = principalKey(reviewer);
  if (!record.reviewers.some((r) => principalKey(r) === key) || key === principalKey(record.requester)) {
    deps.log.warn('approval.vote.refused', { requestId: record.requestId, reviewer: key, reason: 'not a reviewer of this request' });
    return { kind: 'not-a-reviewer' };
  }
  const at = deps.clock();
  // The comment reaches the requester's terminal in an error message: one line, hidden characters escaped.
  const vote = { reviewer, decision, at: at.toISOString(), ...(comment ? { comment: oneLine(comment, MAX_COMMENT_CHARS) } : {}) } as const;
  const recorded = await deps.approvals.addVote(record.requestId, vote);
  if (recorded === 'duplicate' || recorded === 'closed') return { kind: recorded };
  deps.log.info('approval.vote', { requestId: record.requestId, reviewer: key, decision });
  const updated = await deps.approvals.get(record.requestId);
  const outcome = updated ? evaluateVotes(Object.values(updated.votes), updated.approval.min, updated.expiresAt, at) : 'pending';
  if (outcome === 'approved' || outcome === 'denied') {
    if (await deps.approvals.finalize(record.requestId, outcome, at.toISOString())) {
      const taskToken = await deps.approvals.getTaskToken(record.requestId);
      const resumed = taskToken
        ? await deps.workflow.complete(taskToken, { outcome }).then(
            () => true,
            (e: unknown) => {
              deps.log.error('approval.callback-failed', { requestId: record.requestId, error: String(e) });
              return false;
            },
          )
        : false;
      // The decision is recorded either way; without a waiting workflow its last step runs here.
      if (!resumed) await (record.kind === 'policy-change' ? applyPolicyChange(deps, record.requestId) : notifyAgent(deps, record.requestId));
    }
    return { kind: 'decided', outcome };
  }
  return { kind: 'recorded', approvals: Object.values(updated?.votes ?? {}).filter((v) => v.decision === 'approve').length };
}

async function checkLink(deps: ControlPlaneDeps, token: string): Promise<{ record: ApprovalRecord; reviewer: Reviewer } | { page: PageResult }> {
  const verified = verifyLinkToken(token, await deps.linkKey(), deps.clock());
  if (!verified.ok) {
    deps.log.warn('approval.link.rejected', { reason: verified.error });
    const page =
      verified.error === 'expired'
        ? { status: 410, html: messagePage('Link expired', 'This approval link has expired. Nothing was changed.') }
        : INVALID_LINK;
    return { page };
  }
  const record = await deps.approvals.get(verified.value.requestId);
  const reviewer = record?.reviewers.find((r) => principalKey(r) === verified.value.reviewer);
  if (!record || !reviewer) {
    deps.log.warn('approval.link.rejected', { reason: 'unknown request or reviewer', requestId: verified.value.requestId });
    return { page: INVALID_LINK };
  }
  return { record, reviewer };
}

/**
 * A page of the requests the caller reviews or made (by principal, never by address), newest first;
 * every one for admins; every policy change (emergencies included) and their own for auditors.
 * Summaries only: the review page shows a request whole.
 */
export async function listApprovals(deps: Pick<ControlPlaneDeps, 'approvals'>, caller: Identity, role: { admin: boolean; auditor: boolean }, page: { limit?: number; next?: string } = {}): Promise<ApprovalPage> {
  const me = principalKey(caller);
  const bounds = { limit: page.limit ?? DEFAULT_PAGE_ITEMS, next: page.next };
  if (role.admin) return deps.approvals.listAll(bounds);
  if (role.auditor) return deps.approvals.listAll(bounds, { policyChangesOr: me });
  return deps.approvals.listFor(me, bounds);
}
