import { principalKey } from '../identity/identity';
import type { Reviewer } from './reviewers';

/** N-of-M: approved once `min` distinct reviewers approved; any deny ends it; time ends it as expired. */
export type ApprovalOutcome = 'pending' | 'approved' | 'denied' | 'expired';

export interface Vote {
  /** Who voted: the principal the link was made for, and the mailbox it went to. */
  readonly reviewer: Reviewer;
  readonly decision: 'approve' | 'deny';
  readonly at: string;
  readonly comment?: string;
}

export function evaluateVotes(votes: readonly Vote[], min: number, expiresAt: string, now: Date): ApprovalOutcome {
  if (votes.some((v) => v.decision === 'deny')) return 'denied';
  const approvers = new Set(votes.filter((v) => v.decision === 'approve').map((v) => principalKey(v.reviewer)));
  if (approvers.size >= min) return 'approved';
  return now.getTime() >= Date.parse(expiresAt) ? 'expired' : 'pending';
}
