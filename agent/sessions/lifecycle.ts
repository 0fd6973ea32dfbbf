import type { Identity } from '../../core/identity/identity';
import type { Logger } from '../../core/log';
import type { Protocol } from '../../core/policy/schema';
import type { SessionRecorder } from '../recording/session-recorder';
import type { AdmissionRefusal, LiveSession, SessionRegistry } from './registry';

/** An authenticated session, admitted and (unless the policy turns recording off) recorded. */
export interface StartedSession<E> extends LiveSession {
  /** Records one event; a recorder that throws (it must not) is logged, never the caller's problem. */
  record(e: E): void;
  /** The one end: recorded with its reason, and the session leaves the registry. Later calls do nothing. */
  end(reason: string): void;
  /** Starts the recording once the session is under way (a protocol that records only sessions that got that far). */
  attach(recorder: SessionRecorder<E> | undefined): void;
}

export interface SessionOpening<E> {
  readonly id: string;
  readonly target: string;
  readonly protocol: Protocol;
  readonly identity: Identity;
  /** Ends the session from outside (shutdown, strict recording): the protocol closes its connection, then calls `end`. */
  readonly close: (reason: string) => void;
  /** The session's recorder, made once it is admitted; undefined when nothing records it (or `attach` does later). */
  readonly recorder?: () => SessionRecorder<E> | undefined;
}

/**
 * The lifecycle every protocol's session goes through once its caller is known: admitted by the
 * registry (or refused, and nothing recorded), its recording started, events recorded, one end with a
 * reason. A protocol calls this after authentication and renders a refusal its own way.
 */
export function startSession<E>(registry: SessionRegistry, opening: SessionOpening<E>, log: Logger): { ok: true; session: StartedSession<E> } | { ok: false; refusal: AdmissionRefusal } {
  let recorder: SessionRecorder<E> | undefined;
  let ended = false;
  const failed = (e: unknown): void => log.error('session.recorder-failed', { sessionId: opening.id, error: String(e) });
  const session: StartedSession<E> = {
    id: opening.id,
    target: opening.target,
    protocol: opening.protocol,
    identity: opening.identity,
    close: (reason) => opening.close(reason),
    record(e) {
      if (ended || !recorder) return;
      try {
        recorder.event(e);
      } catch (error) {
        failed(error);
      }
    },
    attach(attached) {
      if (!ended) recorder = attached;
    },
    end(reason) {
      if (ended) return;
      ended = true;
      registry.remove(session);
      try {
        recorder?.end(reason);
      } catch (error) {
        failed(error);
      }
    },
  };
  const refusal = registry.admit(session);
  if (refusal) return { ok: false, refusal };
  try {
    recorder = opening.recorder?.();
  } catch (error) {
    failed(error);
  }
  return { ok: true, session };
}
