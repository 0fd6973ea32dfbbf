import { randomUUID } from 'node:crypto';
import { principalKey, type Identity } from '../../core/identity/identity';
import type { AgentContext } from '../agent';
import { JsonSessionRecorder, type ProtocolEvent } from '../recording/session-recorder';
import type { SessionEvent } from '../sessions/events';
import { startSession, type StartedSession } from '../sessions/lifecycle';
import type { AdmissionRefusal } from '../sessions/registry';

/** A caller's API session ends after this long without a request (one `kubectl` run is one session). */
export const API_SESSION_IDLE_MS = 30_000;

export type KubeEvent = SessionEvent | ProtocolEvent;

/** One caller's API session: recorded as NDJSON; requests in flight are cut when it is closed from outside. */
export interface ApiSession {
  readonly session: StartedSession<KubeEvent>;
  /** Registers a request in flight; the returned function marks it done. `abort` is called if the session is closed. */
  begin(abort: (reason: string) => void): () => void;
}

interface Entry extends ApiSession {
  inFlight: Set<(reason: string) => void>;
  idle: NodeJS.Timeout | undefined;
}

/**
 * Kubernetes requests come one HTTP request at a time, each with its own bearer token. The agent
 * groups a caller's requests into one session (admitted by the registry, recorded, closable) that
 * ends once the caller has been quiet for API_SESSION_IDLE_MS with nothing in flight.
 */
export class ApiSessions {
  private readonly byPrincipal = new Map<string, Entry>();

  constructor(
    private readonly target: string,
    private readonly context: AgentContext,
  ) {}

  /** The caller's session, started (admitted and recorded) on their first request. */
  open(identity: Identity, clientAddress: string): { ok: true; session: ApiSession } | { ok: false; refusal: AdmissionRefusal } {
    const key = principalKey(identity);
    const existing = this.byPrincipal.get(key);
    if (existing) return { ok: true, session: existing };
    const id = randomUUID();
    const entry = {} as Entry;
    const started = startSession<KubeEvent>(
      this.context.sessions,
      {
        id,
        target: this.target,
        protocol: 'kubernetes',
        identity,
        close: (reason) => {
          for (const abort of [...entry.inFlight]) abort(reason);
          this.end(key, entry, reason);
        },
        recorder: () =>
          this.context.recordingSettings(this.target).mode === 'off'
            ? undefined
            : new JsonSessionRecorder(this.context.recording, { sessionId: id, target: this.target, protocol: 'kubernetes', identity, clientAddress, at: new Date() }),
      },
      this.context.log,
    );
    if (!started.ok) return started;
    Object.assign(entry, {
      session: started.session,
      inFlight: new Set(),
      idle: undefined,
      begin: (abort: (reason: string) => void) => {
        clearTimeout(entry.idle);
        entry.inFlight.add(abort);
        return () => {
          if (!entry.inFlight.delete(abort) || entry.inFlight.size > 0) return;
          entry.idle = setTimeout(() => this.end(key, entry, 'idle'), API_SESSION_IDLE_MS);
          entry.idle.unref();
        };
      },
    });
    this.byPrincipal.set(key, entry);
    return { ok: true, session: entry };
  }

  closeAll(reason: string): void {
    for (const entry of [...this.byPrincipal.values()]) entry.session.close(reason);
  }

  private end(key: string, entry: Entry, reason: string): void {
    clearTimeout(entry.idle);
    if (this.byPrincipal.get(key) === entry) this.byPrincipal.delete(key);
    entry.session.end(reason);
  }
}
