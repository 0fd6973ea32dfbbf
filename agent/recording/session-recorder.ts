import type { SessionEvent, SessionStartEvent } from '../sessions/events';
import { recordedIdentity } from '../sessions/events';
import type { SessionSpool } from './spool';
import type { RecordingService } from './recording-service';

/**
 * One session's recording, for every protocol: events as they happen, then the end with its reason.
 * Implementations: JSON events on the spool (this file), the Postgres fast path (pg-recorder.ts), the
 * asciicast terminal recording (terminal-recorder.ts). Methods must not throw and keep nothing passed.
 */
export interface SessionRecorder<E = SessionEvent> {
  event(e: E): void;
  end(reason: string): void;
}

/** An event a protocol adds to the shared ones: a kind and its fields (JSON). */
export interface ProtocolEvent {
  readonly e: string;
  readonly [field: string]: unknown;
}

/**
 * A session recorded as newline-delimited JSON events on the spool (chunked, chained, shipped): the
 * recorder a protocol without a terminal or a fast path of its own uses. Each line carries its time.
 */
export class JsonSessionRecorder<E extends { readonly e: string } = SessionEvent | ProtocolEvent> implements SessionRecorder<E> {
  private readonly spool: SessionSpool;
  private ended = false;

  constructor(
    private readonly service: RecordingService,
    start: SessionStartEvent & { readonly protocol: string; readonly details?: Readonly<Record<string, unknown>> },
  ) {
    const identity = recordedIdentity(start.identity);
    const at = start.at.toISOString();
    this.spool = service.begin({ sessionId: start.sessionId, target: start.target, protocol: start.protocol, format: 'ndjson', identity, startedAt: at });
    this.spool.append({ t: at, e: 'session.start', sessionId: start.sessionId, target: start.target, identity, client: start.clientAddress, ...start.details });
  }

  event(e: E): void {
    if (!this.ended) this.spool.append({ t: new Date().toISOString(), ...e });
  }

  end(reason: string): void {
    if (this.ended) return;
    this.spool.append({ t: new Date().toISOString(), e: 'session.end', reason });
    this.ended = true;
    this.service.end(this.spool.sessionId, true);
  }
}
