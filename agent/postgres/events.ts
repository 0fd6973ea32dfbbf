import type { SessionRecorder } from '../recording/session-recorder';
import type { SessionEvent, SessionStartEvent } from '../sessions/events';
import type { ActionClass } from '../../core/policy/schema';
import type { Decision } from '../../core/policy/decide';

/**
 * What a Postgres session reports as it runs: recording plugs in here without touching the proxy.
 */
export interface PgSessionStartEvent extends SessionStartEvent {
  /** The `user` start-up parameter: recorded, never trusted for identity. */
  readonly startupUser: string | undefined;
  readonly database: string;
  readonly applicationName: string | undefined;
}

export interface StatementEvent {
  readonly text: string;
  readonly protocol: 'simple' | 'extended';
  readonly class: ActionClass;
  readonly decision: Decision['kind'];
  readonly rule: string | undefined;
  readonly reason: string | undefined;
}

/** One request/response cycle finished (ReadyForQuery): what the server said about it. */
export interface CycleEndEvent {
  /** When it ended (epoch ms): the event may reach the observer a little later. */
  readonly endedAt: number;
  readonly durationMs: number;
  readonly commandTags: readonly string[];
  readonly rowsSent: number;
  readonly errors: readonly string[];
}

export interface ServerMessageEvent {
  readonly kind: 'error' | 'notice';
  readonly fields: Readonly<Record<string, string>>;
}

export interface PgSessionEvents {
  /** A session is ready: the observer of the rest of it, or undefined when nothing observes it. */
  sessionStart(e: PgSessionStartEvent): PgSessionObserver | undefined;
}

/**
 * One session's recorder: the shared events (`event`, `end`) and the Postgres fast path's own (a
 * statement, its rows and its result per transaction). Its methods run on the proxy's hot path (a statement, its rows and its
 * result per transaction): they must be quick, must not throw, and keep nothing they are passed (the
 * session's DeferredObserver alone holds them, until its socket handler's writes are out).
 */
export interface PgSessionObserver extends SessionRecorder<SessionEvent> {
  statement(e: StatementEvent): void;
  /** A DataRow exactly as sent to the client (`buf[start..end)`, header included). */
  dataRow(buf: Buffer, start: number, end: number): void;
  cycleEnd(e: CycleEndEvent): void;
  serverMessage(e: ServerMessageEvent): void;
}
