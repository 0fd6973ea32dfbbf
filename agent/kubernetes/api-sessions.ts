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
export class ApiSession {
  private readonly inFlight = new Set<(reason: string) => void>();
  private idle: NodeJS.Timeout | undefined;

  constructor(
    readonly session: StartedSession<KubeEvent>,
    private readonly onEnd: (s: ApiSession) => void,
  ) {}

  /** Registers a request in flight; the returned function marks it done. `abort` is called if the session is closed. */
  begin(abort: (reason: string) => void): () => void {
    clearTimeout(this.idle);
    this.inFlight.add(abort);
    return () => {
      if (!this.inFlight.delete(abort) || this.inFlight.size > 0) return;
      this.idle = setTimeout(() => this.end('idle'), API_SESSION_IDLE_MS);
      this.idle.unref();
    };
  }

  /** Closed from outside (shutdown, strict recording): requests in flight are cut. */
  close(reason: string): void {
    for (const abort of [...this.inFlight]) abort(reason);
    this.end(reason);
  }

  private end(reason: string): void {
    clearTimeout(this.idle);
    this.onEnd(this);
    this.session.end(reason);
  }
}

/**
 * Kubernetes requests come one HTTP request at a time, each with its own bearer token. The agent
 * groups a caller's requests into one session (admitted by the registry, recorded, closable) that
 * ends once the caller has been quiet for API_SESSION_IDLE_MS with nothing in flight.
 */
export class ApiSessions {
  private readonly byPrincipal = new Map<string, ApiSession>();

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
    let api: ApiSession | undefined;
    const started = startSession<KubeEvent>(
      this.context.sessions,
      {
        id,
        target: this.target,
        protocol: 'kubernetes',
        identity,
        close: (reason) => api?.close(reason),
        recorder: () =>
          this.context.recordingSettings(this.target).mode === 'off'
            ? undefined
            : new JsonSessionRecorder(this.context.recording, { sessionId: id, target: this.target, protocol: 'kubernetes', identity, clientAddress, at: new Date() }),
      },
      this.context.log,
    );
    if (!started.ok) return started;
    api = new ApiSession(started.session, (s) => {
      if (this.byPrincipal.get(key) === s) this.byPrincipal.delete(key);
    });
    this.byPrincipal.set(key, api);
    return { ok: true, session: api };
  }

  closeAll(reason: string): void {
    for (const api of [...this.byPrincipal.values()]) api.close(reason);
  }
}
