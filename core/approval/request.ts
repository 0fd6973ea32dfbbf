import { createHash } from 'node:crypto';
import type { ActionClass } from '../policy/schema';
import type { Identity } from '../identity/identity';
import type { Reviewer } from './reviewers';
import type { PolicyChangeDetails } from './policy-change';
import type { ApprovalOutcome, Vote } from './votes';

/** What an agent asks to approve. */
export type ApprovalKind = 'statement' | 'script' | 'window';
/** What a stored request is: an agent's ask, or a policy change an admin proposed. */
export type RequestKind = ApprovalKind | 'policy-change';
/** `emergency`: a policy change an admin applied without approval (recorded so that it is listed). */
export type ApprovalStatus = Exclude<ApprovalOutcome, 'pending'> | 'pending' | 'failed' | 'emergency';

/** The verified caller who asks, as the agent's token verifier saw them. */
export interface Requester {
  readonly issuer: string;
  readonly subject: string;
  readonly name: string;
  readonly email?: string;
  readonly groups: readonly string[];
}

/** What the agent asks the control plane to approve: exactly what will run, nothing else. */
export interface ApprovalAsk {
  readonly requestId: string;
  readonly kind: ApprovalKind;
  readonly target: string;
  readonly protocol: string;
  readonly text: string;
  /** Extended-protocol parameter values, as text (null for SQL NULL). */
  readonly params?: readonly (string | null)[];
  readonly sha256: string;
  readonly class: ActionClass;
  readonly rule: string;
  readonly requester: Requester;
  /** How the requester came when not with the protocol's own client (an AI agent through MCP, and its client's name). */
  readonly via?: string;
  readonly reason?: string;
  readonly blastRadius?: string;
  readonly approval: { readonly groups: readonly string[]; readonly min: number; readonly timeoutSeconds: number };
  readonly windowMinutes?: number;
}

export interface ApprovalRecord extends Omit<ApprovalAsk, 'kind'> {
  readonly kind: RequestKind;
  readonly agent: string;
  readonly status: ApprovalStatus;
  readonly reviewers: readonly Reviewer[];
  /** Keyed by the reviewer's principal key: one vote per person. */
  readonly votes: Readonly<Record<string, Vote>>;
  readonly createdAt: string;
  readonly expiresAt: string;
  readonly decidedAt?: string;
  readonly linksSent: boolean;
  readonly delivered: boolean;
  /** Present on policy-change requests only. */
  readonly policyChange?: PolicyChangeDetails;
}

/**
 * What a listing shows of a request: no statement or policy text beyond a short preview, no diff
 * (a policy change carries whole policy texts; a page of them must stay far below Lambda's 6 MB).
 */
export interface ApprovalSummary extends Pick<ApprovalRecord, 'requestId' | 'kind' | 'agent' | 'target' | 'status' | 'requester' | 'reviewers' | 'votes' | 'approval' | 'reason' | 'createdAt' | 'expiresAt' | 'decidedAt'> {
  /** The start of the statement, script or proposed policy. */
  readonly preview: string;
  readonly policyChange?: Pick<PolicyChangeDetails, 'baseVersion' | 'added' | 'removed' | 'result' | 'emergencyReason'>;
}

/** What an approval request says of its requester: the whole verified identity, issuer included. */
export function requesterOf(identity: Identity): Requester {
  return { issuer: identity.issuer, subject: identity.subject, name: identity.name, email: identity.email, groups: [...identity.groups] };
}

/**
 * The hash a reviewer approves (and an agent redeems a grant by): the kind of request, the text, and
 * for a statement sent with parameters (the extended protocol) their count and every value, each
 * unambiguously framed. A statement without `params` is one simple Query of the text. `scope` names
 * what the text describes when one protocol reviews different things as statements (an SSH command,
 * an SFTP or scp file change): the same text in another scope is another action.
 */
export function actionHash(action: { readonly kind: RequestKind; readonly text: string; readonly params?: readonly (string | null)[] | undefined; readonly scope?: string }): string {
  const h = createHash('sha256');
  h.update(`kind:${action.kind}|text:${Buffer.byteLength(action.text)}:`).update(action.text);
  if (action.params) {
    h.update(`|params:${action.params.length}`);
    for (const p of action.params) h.update(p === null ? '|null' : `|${Buffer.byteLength(p)}:${p}`);
  }
  if (action.scope !== undefined) h.update(`|scope:${Buffer.byteLength(action.scope)}:${action.scope}`);
  return h.digest('hex');
}
