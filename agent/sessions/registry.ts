import type { Identity } from '../../core/identity/identity';
import type { Protocol } from '../../core/policy/schema';

/** Sessions one target may hold at once (each holds sockets and a database or host connection). */
export const MAX_SESSIONS_PER_TARGET = 500;

/** What the registry knows of a running session, whatever its protocol. */
export interface LiveSession {
  readonly id: string;
  readonly target: string;
  readonly protocol: Protocol;
  readonly identity: Identity;
  /** Ends the session with a reason the caller is shown (in the protocol's own way). */
  close(reason: string): void;
}

/** Why a session was not admitted; each protocol renders it (a Postgres FATAL with its SQLSTATE, ...). */
export interface AdmissionRefusal {
  readonly kind: 'recording-unavailable' | 'too-many-sessions';
  /** For the caller, starting `twokey:`. */
  readonly message: string;
}

/** Refuses a new session on a target (strict recording with a full spool, ...), or undefined. */
export type AdmissionCheck = (target: string) => AdmissionRefusal | undefined;

/**
 * Every authenticated session of the agent, whatever its protocol: admitted here (or refused with a
 * reason the protocol renders), found by id, and ended from outside (agent shutdown, a strict
 * recording that cannot go on).
 */
export class SessionRegistry {
  private readonly live = new Map<string, LiveSession>();
  private readonly perTarget = new Map<string, number>();
  private readonly checks: AdmissionCheck[] = [];

  constructor(private readonly maxPerTarget = MAX_SESSIONS_PER_TARGET) {}

  /** Adds a reason to refuse new sessions, asked at every admission. */
  addCheck(check: AdmissionCheck): void {
    this.checks.push(check);
  }

  /** Registers the session, or refuses it (and nothing is registered). Session ids are unique (random UUIDs). */
  admit(session: LiveSession): AdmissionRefusal | undefined {
    for (const check of this.checks) {
      const refusal = check(session.target);
      if (refusal) return refusal;
    }
    const count = this.perTarget.get(session.target) ?? 0;
    if (count >= this.maxPerTarget) return { kind: 'too-many-sessions', message: `twokey: ${session.target} has ${this.maxPerTarget} sessions, the most it takes` };
    this.live.set(session.id, session);
    this.perTarget.set(session.target, count + 1);
    return undefined;
  }

  /** Forgets a session (it ended); a session not registered is ignored. */
  remove(session: LiveSession): void {
    if (this.live.get(session.id) !== session) return;
    this.live.delete(session.id);
    const left = (this.perTarget.get(session.target) ?? 1) - 1;
    if (left > 0) this.perTarget.set(session.target, left);
    else this.perTarget.delete(session.target);
  }

  get(id: string): LiveSession | undefined {
    return this.live.get(id);
  }

  /** Ends every session the predicate picks; returns how many. */
  closeWhere(pick: (session: LiveSession) => boolean, reason: string): number {
    const picked = [...this.live.values()].filter(pick);
    for (const session of picked) session.close(reason);
    return picked.length;
  }

  closeAll(reason: string): number {
    return this.closeWhere(() => true, reason);
  }

  /** Live sessions on one target. */
  count(target: string): number {
    return this.perTarget.get(target) ?? 0;
  }

  /** Live sessions per target. */
  counts(): Record<string, number> {
    return Object.fromEntries(this.perTarget);
  }
}
