import type { PolicyRecord, PolicyStore } from './stores';

/** How long a warm instance answers a session start's policy check from the policy it read last. */
export const RECENT_POLICY_MAX_AGE_MS = 5_000;

/**
 * The current policy as read at most `maxAgeMs` ago, for session starts. A session start only checks
 * that the agent serves the session's target, and the agent served it by a policy pushed to it, itself
 * seconds old: a strongly consistent query of the policy table at every start (the local stand-in's
 * costliest call, on the agent's cores) bought nothing for that check. Approvals and policy writes
 * read the table each time. Callers at once share one read; a failed read is not kept.
 */
export class RecentPolicy {
  private kept: { readAt: number; record: Promise<PolicyRecord | undefined> } | undefined;

  constructor(
    private readonly store: Pick<PolicyStore, 'latest'>,
    private readonly nowMs: () => number,
    private readonly maxAgeMs: number = RECENT_POLICY_MAX_AGE_MS,
  ) {}

  latest(): Promise<PolicyRecord | undefined> {
    const now = this.nowMs();
    const kept = this.kept;
    // A clock that went back keeps nothing: the age would be negative.
    if (kept && now >= kept.readAt && now - kept.readAt < this.maxAgeMs) return kept.record;
    const read = { readAt: now, record: this.store.latest() };
    this.kept = read;
    read.record.catch(() => {
      if (this.kept === read) this.kept = undefined;
    });
    return read.record;
  }
}
