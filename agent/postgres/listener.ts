import { randomInt, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect as tcpConnect, createServer, type Server } from 'node:net';
import { createSecureContext } from 'node:tls';
import type { AgentContext, ProtocolListener } from '../agent';
import type { RecordingSettings } from '../../core/policy/schema';
import { asPostgresTarget, passwordOf, pinnedDatabase, type PostgresTargetConfig, type TargetConfig } from '../config';
import { loadParser, StatementClassifier } from './classify/classifier';
import type { PgSessionEvents } from './events';
import { ClientSession } from './session';
import type { SessionLimits } from './session-deps';
import { cancelRequest } from './protocol/writer';
import { querySimple } from './upstream/simple-query';
import { pgRecorder } from '../recording/pg-recorder';
import { countingQuery, planRows } from './approval/blast-radius';
import { PgMaskingService } from './masking/masking-service';
import { checkReadCredential } from './read-credential';
import { MAX_SESSIONS_PER_TARGET } from '../sessions/registry';
import { listenOn } from '../net/listen';

/** Default cap on one client message: large enough for big COPY rows and long SQL, small enough to bound memory. */
export const DEFAULT_MAX_CLIENT_MESSAGE_BYTES = 16 * 1024 * 1024;
export const DEFAULT_MAX_SERVER_MESSAGE_BYTES = 256 * 1024 * 1024;

const BLAST_RADIUS_TIMEOUT_MS = 3_000;

/**
 * The planner's row estimate for a write, planned as a SELECT on the read credential (nothing runs),
 * in the target's database under the role's defaults: like the approved run, nothing of the caller's
 * session settings is used.
 */
export async function estimateBlastRadius(target: PostgresTargetConfig, sql: string): Promise<string> {
  const counting = countingQuery(sql);
  if (!counting) return 'unknown (not estimated for this kind of statement)';
  if ('rows' in counting) return `${counting.rows} row(s) (VALUES list)`;
  const rows = await Promise.race([
    querySimple(
      {
        host: target.upstream.host,
        port: target.upstream.port,
        user: target.readCredential.user,
        password: passwordOf(target.readCredential),
        database: pinnedDatabase(target),
      },
      `EXPLAIN (FORMAT JSON) ${counting.select}`,
    ),
    new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), BLAST_RADIUS_TIMEOUT_MS).unref()),
  ]);
  const estimate = rows ? planRows(rows[0]?.[0] ?? '') : undefined;
  return estimate === undefined ? 'unknown (the planner gave no estimate)' : `about ${estimate} row(s) (planner estimate)`;
}

export interface PostgresListenerOptions {
  readonly events?: PgSessionEvents;
  readonly limits?: Partial<SessionLimits>;
}

/** The agent's PostgreSQL endpoint for one target. */
export async function startPostgresListener(config: TargetConfig, context: AgentContext, options: PostgresListenerOptions = {}): Promise<ProtocolListener & { sessions: () => number }> {
  const target = asPostgresTarget(config);
  const database = pinnedDatabase(target);
  await loadParser();
  await checkReadCredential(target);
  const tls = target.tls ? createSecureContext({ cert: readFileSync(target.tls.certFile), key: readFileSync(target.tls.keyFile) }) : undefined;
  const classifier = new StatementClassifier();
  const byPid = new Map<number, ClientSession>();
  const limits: SessionLimits = {
    maxClientMessageBytes: options.limits?.maxClientMessageBytes ?? DEFAULT_MAX_CLIENT_MESSAGE_BYTES,
    maxServerMessageBytes: options.limits?.maxServerMessageBytes ?? DEFAULT_MAX_SERVER_MESSAGE_BYTES,
  };
  const secrets = new Map<ClientSession, number>();
  // Every session is recorded unless the policy turns recording off (for all targets or this one).
  const recording = (): RecordingSettings => context.recordingSettings(target.name);
  const events = pgRecorder(context.recording, target.name, recording);

  const masking = new PgMaskingService(
    target.name,
    (identity, t) => context.masks(identity, t),
    () => context.maskingKey(),
    (database) => ({ host: target.upstream.host, port: target.upstream.port, user: target.readCredential.user, password: passwordOf(target.readCredential), database }),
    context.log,
  );

  const server: Server = createServer({ noDelay: true }, (socket) => {
    new ClientSession(socket, {
      target: {
        name: target.name,
        upstream: { host: target.upstream.host, port: target.upstream.port, database },
        read: { user: target.readCredential.user, password: passwordOf(target.readCredential) },
        write: { user: target.writeCredential.user, password: passwordOf(target.writeCredential) },
        tls,
      },
      approvals: context.approvals,
      estimateBlastRadius: (sql) => estimateBlastRadius(target, sql),
      sessions: context.sessions,
      limits,
      classifier,
      verifyToken: (token) => context.verifyToken(token),
      decide: (identity, t, action) => context.decide(identity, t, action),
      events: options.events ?? events,
      masking,
      channelOf: (address, port) => context.channels.of(address, port),
      log: context.log,
      register(session) {
        let pid: number;
        do pid = randomInt(1, 2 ** 31 - 1);
        while (byPid.has(pid));
        const secret = randomInt(0, 2 ** 31 - 1);
        byPid.set(pid, session);
        secrets.set(session, secret);
        return { pid, secret };
      },
      unregister(session) {
        byPid.delete(session.backendKey.pid);
        secrets.delete(session);
      },
      cancel(pid, secret) {
        const session = byPid.get(pid);
        const expected = session ? secrets.get(session) : undefined;
        const a = Buffer.alloc(4);
        const b = Buffer.alloc(4);
        a.writeInt32BE(secret);
        b.writeInt32BE(expected ?? ~secret);
        const upstreamKey = session?.upstreamKey;
        if (!session || expected === undefined || !timingSafeEqual(a, b) || !upstreamKey) {
          context.log.warn('pg.cancel.rejected', { target: target.name });
          return;
        }
        // Forward the cancel with the database's own key data, on a new connection, as PostgreSQL expects.
        const s = tcpConnect({ host: target.upstream.host, port: target.upstream.port }, () => s.end(cancelRequest(upstreamKey.pid, upstreamKey.secret)));
        s.on('error', () => s.destroy());
      },
    });
  });
  server.maxConnections = MAX_SESSIONS_PER_TARGET;
  const address = await listenOn(server, target.listen);
  return {
    target: target.name,
    endpoint: `${target.listen.host}:${address.port}`,
    sessions: () => secrets.size,
    async stop() {
      for (const session of [...secrets.keys()]) session.close('the agent is stopping');
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
