import type { SecureContext } from 'node:tls';
import type { Identity } from '../../core/identity/identity';
import type { Logger } from '../../core/log';
import type { Action, Decision } from '../../core/policy/decide';
import type { ApprovalGate } from '../approvals/approval-flow';
import type { SessionRegistry } from '../sessions/registry';
import type { StatementClassifier } from './classify/classifier';
import type { PgSessionEvents } from './events';
import type { SessionMasking } from './masking/masking-service';
import type { ClientSession } from './session';
import type { SessionEvent } from '../sessions/events';
import type { StartedSession } from '../sessions/lifecycle';
import type { PgSessionMasking } from './masking/pg-session-masking';
import type { StatementJudge } from './statement-judge';
import type { UpstreamConnection } from './upstream/connect';
import type { CallerChannel } from '../sessions/channels';

export interface SessionLimits {
  /** Largest message a client may send (bytes, header included). */
  readonly maxClientMessageBytes: number;
  /** Largest single message accepted from the database (a DataRow is buffered whole only when split). */
  readonly maxServerMessageBytes: number;
}

export interface SessionTarget {
  readonly name: string;
  /** The one database this target serves (pinned in the agent's config). */
  readonly upstream: { host: string; port: number; database: string };
  readonly read: { user: string; password: string | undefined };
  readonly write: { user: string; password: string | undefined };
  readonly tls: SecureContext | undefined;
}

export interface SessionDeps {
  readonly target: SessionTarget;
  readonly limits: SessionLimits;
  readonly classifier: StatementClassifier;
  readonly verifyToken: (token: string) => Promise<{ ok: true; value: Identity } | { ok: false; error: { reason: string } }>;
  readonly decide: (identity: Identity, target: string, action: Action) => Decision;
  readonly events: PgSessionEvents;
  readonly log: Logger;
  readonly approvals: ApprovalGate;
  /** The planner's estimate of what a write touches, from the read credential; best effort. */
  readonly estimateBlastRadius: (sql: string) => Promise<string>;
  /** Every session of the agent: admits this one once its caller is known (strict recording, caps). */
  readonly sessions: SessionRegistry;
  /** Registers the session for CancelRequest; returns the key data the client gets. */
  readonly register: (session: ClientSession) => { pid: number; secret: number };
  readonly unregister: (session: ClientSession) => void;
  readonly cancel: (pid: number, secret: number) => void;
  /** Masking for subjects the policy masks; absent, nothing is masked. */
  readonly masking?: SessionMasking;
  /** The channel of a connection the agent itself opened for a caller (MCP), by the client socket's address and port. */
  readonly channelOf?: (remoteAddress: string | undefined, remotePort: number | undefined) => CallerChannel | undefined;
}

/** What only a session past authentication has: the types say what is known when. */
export interface Live {
  readonly identity: Identity;
  readonly session: StartedSession<SessionEvent>;
  readonly upstream: UpstreamConnection;
  readonly judge: StatementJudge;
  readonly masking: PgSessionMasking | undefined;
  /** How the caller came (an AI agent through MCP), when not with a Postgres client of their own. */
  readonly channel: CallerChannel | undefined;
}
