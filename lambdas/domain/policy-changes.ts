import { randomUUID } from 'node:crypto';
import type { PolicyChangeDetails, PolicyChangeResult } from '../../core/approval/policy-change';
import { actionHash, requesterOf, type ApprovalRecord, type ApprovalStatus } from '../../core/approval/request';
import { reviewersFor, type Reviewer } from '../../core/approval/reviewers';
import { principalKey, type Identity } from '../../core/identity/identity';
import { unifiedLineDiff } from '../../core/line-diff';
import { parsePolicy } from '../../core/policy/parse';
import type { PolicyDocument } from '../../core/policy/schema';
import type { PolicyRecord } from '../store/stores';
import type { ControlPlaneDeps } from './deps';
import { InvalidRequestError, VersionConflictError } from './errors';
import { emergencyNotice } from './policy-change-notices';
import { parseStoredPolicy, storeNextVersion } from './policies';

/** How long the other admins have to decide on a policy change. */
export const POLICY_CHANGE_TIMEOUT_SECONDS = 24 * 3600;
/** The diff kept with a request (the approvals table's items hold at most 400 KB, the proposal up to 256 KiB of it). */
export const MAX_STORED_DIFF_BYTES = 96 * 1024;
export const MAX_CHANGE_REASON_CHARS = 500;
/** Where approval requests name a target, a policy change names this. */
export const POLICY_CHANGE_TARGET = 'policy';
/** Policy changes are carried out by the control plane, not an agent; no agent name can look like this. */
const NO_AGENT = '(control plane)';

export interface PolicyProposal {
  readonly source: string;
  readonly expectedVersion: number | undefined;
  readonly reason: string | undefined;
  readonly emergency: boolean;
}

/** The groups of the deployment's configuration: admins approve changes; admins and auditors hear of emergencies. */
export interface AdminGroups {
  readonly admin: string;
  readonly auditor: string;
}

export type ProposalOutcome =
  | { readonly kind: 'stored'; readonly record: PolicyRecord; readonly emergency: boolean }
  | { readonly kind: 'submitted'; readonly requestId: string; readonly baseVersion: number; readonly reviewers: number; readonly expiresAt: string };

/**
 * `PUT /policies`. A change to a stored policy is a request that another admin approves (the approval
 * workflow applies it). Two cases store at once: the deployment's first policy (nothing to protect
 * yet, and no directory of admins to ask), and an emergency change, which needs a reason and is told
 * to every admin and auditor, recorded as an audit event and listed with the approval requests.
 */
export async function proposePolicy(deps: ControlPlaneDeps, proposal: PolicyProposal, by: Identity, groups: AdminGroups): Promise<ProposalOutcome> {
  const proposed = parsePolicy(proposal.source);
  if (!proposed.ok) throw new InvalidRequestError('invalid policy', proposed.error.problems);
  const { expectedVersion } = proposal;
  if (expectedVersion === undefined || !Number.isInteger(expectedVersion) || expectedVersion < 0) {
    throw new InvalidRequestError('state the version you are replacing (If-Match header or ?expectedVersion=, 0 for the first policy)');
  }
  const reason = reasonOf(proposal.reason);
  if (proposal.emergency && reason === undefined) throw new InvalidRequestError('an emergency change needs a reason');
  const current = await deps.policies.latest();
  if ((current?.version ?? 0) !== expectedVersion) throw new VersionConflictError(current?.version ?? 0);
  if (!current) {
    const record = await storeNextVersion(deps, proposal.source, 0, { updatedBy: by.subject });
    await audit(deps, by, 'policy.created', { version: record.version });
    return { kind: 'stored', record, emergency: false };
  }
  const currentDocument = parseStoredPolicy(current);
  const details = changeDetails(current, proposal.source);
  if (proposal.emergency && reason !== undefined) {
    return applyEmergency(deps, { current, currentDocument: currentDocument.ok ? currentDocument.value : undefined, proposed: proposed.value, source: proposal.source, reason, details }, by, groups);
  }
  // An unreadable stored policy names no reviewers: only an emergency change can replace it.
  if (!currentDocument.ok) throw new InvalidRequestError(`policy version ${current.version} cannot be read; only an emergency change can replace it`);
  const reviewers = policyChangeReviewers(currentDocument.value, groups.admin, by, current.version);
  const record = changeRequest(deps.clock(), { source: proposal.source, reason, details, by, adminGroup: groups.admin, status: 'pending', reviewers });
  await deps.approvals.create(record);
  await deps.workflow.start(record.requestId);
  await audit(deps, by, 'policy.change-requested', { requestId: record.requestId, baseVersion: current.version, reviewers: reviewers.length });
  deps.log.info('policy.change-requested', { requestId: record.requestId, by: principalKey(by), baseVersion: current.version, reviewers: reviewers.length });
  return { kind: 'submitted', requestId: record.requestId, baseVersion: current.version, reviewers: reviewers.length, expiresAt: record.expiresAt };
}

/**
 * The admins who may approve a change: the admin group of the CURRENT policy's reviewers directory
 * (a proposal cannot name its own reviewers), never the requester (by principal, and none of their
 * mailboxes). Refused when no other admin is listed, or when the requester is an admin without an
 * entry of their own there (one of the entries could be theirs).
 */
export function policyChangeReviewers(current: PolicyDocument, adminGroup: string, requester: Identity, version: number): Reviewer[] {
  const selected = reviewersFor(current, [adminGroup], 1, requesterOf(requester));
  if (selected.ok) return selected.value;
  if (selected.error.code === 'not-enough-reviewers') {
    throw new InvalidRequestError(`no admin other than you is listed under reviewers.${adminGroup} in policy version ${version} to approve this change`);
  }
  throw new InvalidRequestError(selected.error.message);
}

/** Every mailbox in these groups of any of these directories (the requester's included): who hears of an emergency change. */
function noticeRecipients(documents: readonly (PolicyDocument | undefined)[], groups: readonly string[]): string[] {
  const all = documents.flatMap((d) => groups.flatMap((g) => d?.reviewers[g] ?? []));
  return [...new Set(all.map((r) => r.email.toLowerCase()))];
}

/**
 * Workflow step for an approved policy change: the exact approved document becomes the next version,
 * if the version it was written against is still current; otherwise the change fails as a conflict and
 * the policy stays as it is. Denied, expired and failed requests change nothing. Safe to run again.
 */
export async function applyPolicyChange(deps: Pick<ControlPlaneDeps, 'approvals' | 'policies' | 'audit' | 'clock' | 'log'>, requestId: string): Promise<void> {
  const record = await deps.approvals.get(requestId);
  const change = record?.policyChange;
  if (!record || !change || record.kind !== 'policy-change' || record.status !== 'approved' || change.result) return;
  const approvedBy = Object.values(record.votes)
    .filter((v) => v.decision === 'approve')
    .map((v) => v.reviewer.email);
  // The reviewers approved this hash; a stored text that does not match it is never applied.
  const result: PolicyChangeResult =
    actionHash({ kind: record.kind, text: record.text }) === record.sha256 ? await storeApproved(deps, record, change.baseVersion, approvedBy) : { refused: 'the stored document does not match the approved hash' };
  if (!(await deps.approvals.setPolicyChangeResult(requestId, result))) return;
  const action = 'applied' in result ? 'policy.changed' : 'conflict' in result ? 'policy.change-conflict' : 'policy.change-refused';
  await audit(deps, record.requester, action, { requestId, baseVersion: change.baseVersion, approvedBy, ...result });
  if ('refused' in result) deps.log.error(action, { requestId, ...result });
  else deps.log.info(action, { requestId, ...result });
}

async function storeApproved(deps: Pick<ControlPlaneDeps, 'policies' | 'clock' | 'log'>, record: ApprovalRecord, baseVersion: number, approvedBy: readonly string[]): Promise<PolicyChangeResult> {
  const current = await deps.policies.latest();
  // A retried step finds the version it stored before.
  if (current?.changeRequest === record.requestId) return { applied: current.version };
  try {
    const stored = await storeNextVersion(deps, record.text, baseVersion, { updatedBy: record.requester.subject, changeRequest: record.requestId, approvedBy });
    return { applied: stored.version };
  } catch (e) {
    if (e instanceof VersionConflictError) return { conflict: e.currentVersion };
    throw e;
  }
}

interface EmergencyChange {
  readonly current: PolicyRecord;
  readonly currentDocument: PolicyDocument | undefined;
  readonly proposed: PolicyDocument;
  readonly source: string;
  readonly reason: string;
  readonly details: PolicyChangeDetails;
}

async function applyEmergency(deps: ControlPlaneDeps, change: EmergencyChange, by: Identity, groups: AdminGroups): Promise<ProposalOutcome> {
  const stored = await storeNextVersion(deps, change.source, change.current.version, { updatedBy: by.subject, emergencyReason: change.reason });
  const details: PolicyChangeDetails = { ...change.details, emergencyReason: change.reason, result: { applied: stored.version } };
  const record = changeRequest(deps.clock(), { source: change.source, reason: change.reason, details, by, adminGroup: groups.admin, status: 'emergency', reviewers: [] });
  await audit(deps, by, 'policy.emergency-change', {
    requestId: record.requestId,
    reason: change.reason,
    fromVersion: change.current.version,
    toVersion: stored.version,
    diff: details.diff,
  });
  await deps.approvals.create(record);
  // Both directories: an emergency change that drops the admins from the new policy still reaches them.
  const recipients = noticeRecipients([change.currentDocument, change.proposed], [groups.admin, groups.auditor]);
  for (const to of recipients) {
    await deps.mailer.send(emergencyNotice(record, to)).catch((e: unknown) => deps.log.error('policy.emergency-notice.failed', { requestId: record.requestId, to, error: String(e) }));
  }
  deps.log.warn('policy.emergency-change', { requestId: record.requestId, by: principalKey(by), version: stored.version, notified: recipients.length });
  return { kind: 'stored', record: stored, emergency: true };
}

function reasonOf(raw: string | undefined): string | undefined {
  const reason = raw?.trim();
  if (!reason) return undefined;
  if (reason.length > MAX_CHANGE_REASON_CHARS) throw new InvalidRequestError(`the reason is longer than ${MAX_CHANGE_REASON_CHARS} characters`);
  return reason;
}

function changeDetails(current: PolicyRecord, source: string): PolicyChangeDetails {
  const diff = unifiedLineDiff(current.source, source, { before: `policy version ${current.version}`, after: 'proposed' });
  const truncated = Buffer.byteLength(diff.text, 'utf8') > MAX_STORED_DIFF_BYTES;
  const text = truncated ? Buffer.from(diff.text, 'utf8').subarray(0, MAX_STORED_DIFF_BYTES).toString('utf8').replace(/[^\n]*$/, '') : diff.text;
  return { baseVersion: current.version, diff: text, diffTruncated: truncated, added: diff.added, removed: diff.removed };
}

interface ChangeRequestFields {
  readonly source: string;
  readonly reason: string | undefined;
  readonly details: PolicyChangeDetails;
  readonly by: Identity;
  readonly adminGroup: string;
  readonly status: Extract<ApprovalStatus, 'pending' | 'emergency'>;
  readonly reviewers: readonly Reviewer[];
}

function changeRequest(now: Date, f: ChangeRequestFields): ApprovalRecord {
  return {
    requestId: randomUUID(),
    kind: 'policy-change',
    target: POLICY_CHANGE_TARGET,
    protocol: 'policy',
    text: f.source,
    sha256: actionHash({ kind: 'policy-change', text: f.source }),
    class: 'admin',
    rule: 'policy-change',
    requester: requesterOf(f.by),
    ...(f.reason ? { reason: f.reason } : {}),
    approval: { groups: [f.adminGroup], min: 1, timeoutSeconds: POLICY_CHANGE_TIMEOUT_SECONDS },
    agent: NO_AGENT,
    status: f.status,
    reviewers: f.reviewers,
    votes: {},
    createdAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + POLICY_CHANGE_TIMEOUT_SECONDS * 1000).toISOString(),
    ...(f.status === 'emergency' ? { decidedAt: now.toISOString() } : {}),
    linksSent: false,
    delivered: false,
    policyChange: f.details,
  };
}

/** An audit event about the policy; the actor is named by principal (issuer and subject). */
async function audit(deps: Pick<ControlPlaneDeps, 'audit' | 'clock'>, actor: Pick<Identity, 'issuer' | 'subject'>, action: string, detail: Record<string, unknown>): Promise<void> {
  await deps.audit.put({ eventId: randomUUID(), at: deps.clock().toISOString(), actor: principalKey(actor), action, subject: 'policy', detail });
}
