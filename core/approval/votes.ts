/** N-of-M: approved once `min` distinct reviewers approved; any deny ends it; time ends it as expired. */
export type ApprovalOutcome = 'pending' | 'approved' | 'denied' | 'expired';

export interface Vote {
  readonly reviewer: string;
  readonly decision: 'approve' | 'deny';
  readonly at: string;
  readonly comment?: string;
}

export function evaluateVotes(votes: readonly Vote[], min: number, expiresAt: string, now: Date): ApprovalOutcome {
  if (votes.some((v) => v.decision === 'deny')) return 'denied';
  const approvers = new Set(votes.filter((v) => v.decision === 'approve').map((v) => v.reviewer.toLowerCase()));
  if (approvers.size >= min) return 'approved';
  return now.getTime() >= Date.parse(expiresAt) ? 'expired' : 'pending';
}

/**
 * Reviewers for a request: the approver groups' addresses from the policy directory, never the
 * requester (compared by email and by subject, case-insensitively).
 */
export function reviewersFor(
  directory: Readonly<Record<string, readonly string[]>>,
  groups: readonly string[],
  requester: { subject: string; email?: string | undefined },
): string[] {
  const me = new Set([requester.subject.toLowerCase(), ...(requester.email ? [requester.email.toLowerCase()] : [])]);
  const all = groups.flatMap((g) => directory[g] ?? []).map((e) => e.toLowerCase());
  return [...new Set(all)].filter((e) => !me.has(e) && !me.has(e.split('@')[0] ?? ''));
}
