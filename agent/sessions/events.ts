import type { Identity } from '../../core/identity/identity';
import type { Decision } from '../../core/policy/decide';
import type { ActionClass, Protocol } from '../../core/policy/schema';

/** What every protocol's session records when it starts; a protocol's start event extends it. */
export interface SessionStartEvent {
  readonly sessionId: string;
  readonly target: string;
  readonly identity: Identity;
  readonly clientAddress: string;
  readonly at: Date;
}

/** What twokey decided about one action of the caller's (a statement, a command, an API request). */
export interface DecisionEvent {
  readonly e: 'decision';
  /** The action as the caller sent it, after masking. */
  readonly text: string;
  readonly class: ActionClass;
  readonly decision: Decision['kind'];
  readonly rule: string | undefined;
  readonly reason: string | undefined;
}

/** A step of an approval: requested, then its outcome (approved, denied, expired, failed). */
export interface ApprovalEvent {
  readonly requestId: string;
  readonly outcome: string;
  readonly reviewers: readonly string[];
}

/** The events every protocol records; a protocol adds its own kinds beside them. */
export type SessionEvent = DecisionEvent | ({ readonly e: 'approval' } & ApprovalEvent);

/** The identity as a recording stores it (nothing but what an auditor needs to know who it was). */
export function recordedIdentity(identity: Identity): { subject: string; issuer: string; name: string; email?: string; groups: string[] } {
  return { subject: identity.subject, issuer: identity.issuer, name: identity.name, email: identity.email, groups: [...identity.groups] };
}

export type { Protocol };
