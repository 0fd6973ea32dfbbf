import type { Identity } from '../../../core/identity/identity';
import type { SessionEvent } from '../../sessions/events';
import { startSession, type StartedSession } from '../../sessions/lifecycle';
import { PgSessionMasking } from '../masking/pg-session-masking';
import { SQLSTATE } from '../protocol/codes';
import type { SessionDeps } from '../session-deps';
import { connectUpstream, UpstreamError, type UpstreamConnection } from '../upstream/connect';
import type { ReadBuffers } from '../upstream/read-buffers';

/** Start-up parameters passed on to the database; everything else (notably `options`) is dropped. */
const FORWARDED_STARTUP_PARAMS = ['application_name', 'DateStyle', 'TimeZone', 'IntervalStyle', 'extra_float_digits', 'search_path'];

/** A session past authentication: who, in the agent's registry, on its upstream connection, masked or not. */
export interface OpenedSession {
  readonly identity: Identity;
  readonly session: StartedSession<SessionEvent>;
  readonly upstream: UpstreamConnection;
  readonly masking: PgSessionMasking | undefined;
}

export type OpenOutcome =
  | { readonly ok: true; readonly opened: OpenedSession }
  /** Refused: a FATAL for the caller (nothing to send when the session ended meanwhile). */
  | { readonly ok: false; readonly fatal: { readonly code: string; readonly message: string; readonly detail?: string } | undefined };

export interface OpenRequest {
  readonly id: string;
  readonly token: string;
  readonly startup: Readonly<Record<string, string>>;
  readonly clientAddress: string;
  /** Reads from the database into reused buffers (see ReadBuffers). */
  readonly readBuffers: ReadBuffers;
  /** Whether the client went away while this ran. */
  closed(): boolean;
  /** Ends the session from outside (the registry's `closeWhere`). */
  close(reason: string): void;
  /** The session is in the registry from here on: its end must be reported whatever happens next. */
  admitted(session: StartedSession<SessionEvent>): void;
}

const refused = (code: string, message: string, detail?: string): OpenOutcome => ({ ok: false, fatal: { code, message, detail } });

/**
 * What follows the start-up handshake's password: the token verified, the session admitted (strict
 * recording, caps), the database checked against the one the target serves (after authentication, as
 * PostgreSQL does, so that strangers do not learn the name), the upstream connection opened on the read
 * credential, and masking readied for a masked subject.
 */
export async function openSession(deps: SessionDeps, r: OpenRequest): Promise<OpenOutcome> {
  const verified = await deps.verifyToken(r.token);
  if (r.closed()) return { ok: false, fatal: undefined };
  if (!verified.ok) {
    deps.log.warn('pg.auth.rejected', { sessionId: r.id, reason: verified.error.reason, startupUser: r.startup.user, client: r.clientAddress });
    // Same message as PostgreSQL's, which does not say why a password was wrong.
    return refused(SQLSTATE.invalidPassword, `password authentication failed for user "${r.startup.user ?? ''}"`);
  }
  const identity = verified.value;
  const target = deps.target;
  const admitted = startSession<SessionEvent>(deps.sessions, { id: r.id, target: target.name, protocol: 'postgres', identity, close: r.close }, deps.log);
  if (!admitted.ok) return refused(admitted.refusal.kind === 'recording-unavailable' ? SQLSTATE.diskFull : SQLSTATE.tooManyConnections, admitted.refusal.message);
  r.admitted(admitted.session);
  const database = target.upstream.database;
  const asked = r.startup.database;
  if (asked !== undefined && asked !== database) return refused(SQLSTATE.invalidCatalogName, `twokey: this endpoint serves database "${database}" only, not "${asked}"`);
  const params: Record<string, string> = {};
  for (const key of FORWARDED_STARTUP_PARAMS) {
    const value = r.startup[key];
    if (value !== undefined) params[key] = value;
  }
  let upstream: UpstreamConnection;
  try {
    upstream = await connectUpstream({ host: target.upstream.host, port: target.upstream.port, user: target.read.user, password: target.read.password, database, params }, r.readBuffers);
  } catch (e) {
    deps.log.error('pg.upstream.connect-failed', { sessionId: r.id, target: target.name, error: e instanceof Error ? e.message : String(e) });
    return refused(SQLSTATE.connectionFailure, `twokey: cannot connect to ${target.name}`, e instanceof UpstreamError && e.fields?.M ? e.fields.M : undefined);
  }
  const masking = r.closed() ? undefined : await PgSessionMasking.start(deps.masking, identity, database);
  if (r.closed() || masking instanceof Error) {
    upstream.socket.destroy();
    if (!(masking instanceof Error)) return { ok: false, fatal: undefined };
    deps.log.error('pg.masking.catalog-failed', { sessionId: r.id, error: String(masking) });
    return refused(SQLSTATE.connectionFailure, 'twokey: masking applies to this session, but the database catalog could not be read');
  }
  return { ok: true, opened: { identity, session: admitted.session, upstream, masking } };
}
