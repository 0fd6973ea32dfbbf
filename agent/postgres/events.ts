import type { Identity } from '../../core/identity/identity';
import type { ActionClass } from '../../core/policy/schema';
import type { Decision } from '../../core/policy/decide';

/**
 * What a Postgres session reports as it runs. Recording and masking plug in here without touching the
 * proxy. Observers must be quick and must not throw (a throwing observer is logged and ignored).
 */
export interface SessionStartEvent {
  readonly sessionId: string;
  readonly target: string;
  readonly identity: Identity;
  /** The `user` start-up parameter: recorded, never trusted for identity. */
  readonly startupUser: string | undefined;
  readonly database: string;
  readonly applicationName: string | undefined;
  readonly clientAddress: string;
  readonly at: Date;
}

export interface StatementEvent {
  readonly sessionId: string;
  readonly text: string;
  readonly protocol: 'simple' | 'extended';
  readonly class: ActionClass;
  readonly decision: Decision['kind'];
  readonly rule: string | undefined;
  readonly reason: string | undefined;
  readonly at: Date;
}

/** One request/response cycle finished (ReadyForQuery): what the server said about it. */
export interface CycleEndEvent {
  readonly sessionId: string;
  readonly durationMs: number;
  readonly commandTags: readonly string[];
  readonly rowsSent: number;
  readonly errors: readonly string[];
}

export interface ServerMessageEvent {
  readonly sessionId: string;
  readonly kind: 'error' | 'notice';
  readonly fields: Readonly<Record<string, string>>;
}

export interface SessionEndEvent {
  readonly sessionId: string;
  readonly reason: string;
  readonly at: Date;
}

export interface ApprovalEvent {
  readonly sessionId: string;
  readonly requestId: string;
  readonly outcome: string;
  readonly reviewers: readonly string[];
  readonly at: Date;
}

export interface PgSessionEvents {
  approval?(e: ApprovalEvent): void;
  sessionStart?(e: SessionStartEvent): void;
  statement?(e: StatementEvent): void;
  cycleEnd?(e: CycleEndEvent): void;
  /** A DataRow exactly as sent to the client (`buf[start..end)`, header included). Only called when set. */
  dataRow?(sessionId: string, buf: Buffer, start: number, end: number): void;
  serverMessage?(e: ServerMessageEvent): void;
  sessionEnd?(e: SessionEndEvent): void;
}
