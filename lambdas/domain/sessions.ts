import { randomUUID } from 'node:crypto';
import { chunkDigest, type RecordingFormat } from '../../core/recording/chunk';
import type { Identity } from '../../core/identity/identity';
import { targetsOfAgent } from '../../core/policy/decide';
import { MAX_PRESIGN_BATCH, TUNNEL_PROTOCOL_VERSION, type AgentMessage, type ControlMessage } from '../../core/tunnel/messages';
import type { SessionFilter, SessionRecord } from '../store/session-store';
import { parseStoredPolicy } from './policies';
import type { ControlPlaneDeps } from './deps';
import { ForbiddenError, NotFoundError } from './errors';

/** Presigned PUT URLs let an agent write one chunk key, briefly; it holds no AWS credentials. */
export const UPLOAD_URL_SECONDS = 300;
/** Presigned GET URLs for auditors. */
export const DOWNLOAD_URL_SECONDS = 300;
export const MAX_CHUNKS_PER_SESSION = 100_000;

type Msg<T extends AgentMessage['type']> = Extract<AgentMessage, { type: T }>;

/** `recordings/<yyyy>/<mm>/<dd>/<session-id>/` from the session's start. */
export function recordingPrefix(sessionId: string, startedAt: string): string {
  const d = new Date(startedAt);
  const ymd = Number.isNaN(d.getTime()) ? new Date(0) : d;
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `recordings/${ymd.getUTCFullYear()}/${pad(ymd.getUTCMonth() + 1)}/${pad(ymd.getUTCDate())}/${sessionId}/`;
}

export const chunkKey = (prefix: string, seq: number, format: RecordingFormat): string => `${prefix}${seq}.${format}.gz`;

function reply(sessionId: string, code: string, message: string): ControlMessage {
  return { type: 'error', v: TUNNEL_PROTOCOL_VERSION, code, message, inReplyTo: sessionId };
}

export async function startSession(deps: ControlPlaneDeps, agent: string, m: Msg<'session.start'>): Promise<ControlMessage[]> {
  const policy = await deps.recentPolicy.latest();
  const parsed = policy ? parseStoredPolicy(policy) : undefined;
  if (!parsed?.ok || !targetsOfAgent(parsed.value, agent).includes(m.target)) {
    deps.log.warn('session.refused', { agent, target: m.target, sessionId: m.sessionId });
    return [reply(m.sessionId, 'target-not-served', `agent ${agent} does not serve ${m.target}`)];
  }
  await deps.sessions.create({
    sessionId: m.sessionId,
    agent,
    target: m.target,
    protocol: m.protocol,
    format: m.format,
    user: m.identity.subject,
    identity: m.identity,
    startedAt: m.startedAt,
    status: 'live',
    prefix: recordingPrefix(m.sessionId, m.startedAt),
  });
  return [];
}

async function ownSession(deps: ControlPlaneDeps, agent: string, sessionId: string): Promise<SessionRecord | undefined> {
  const session = await deps.sessions.get(sessionId);
  return session?.agent === agent ? session : undefined;
}

export async function presignChunk(deps: ControlPlaneDeps, agent: string, m: Msg<'recording.presign'>): Promise<ControlMessage[]> {
  const session = await ownSession(deps, agent, m.sessionId);
  if (!session) return [reply(m.sessionId, 'unknown-session', 'no such session for this agent')];
  if (session.status !== 'live' || m.seq >= MAX_CHUNKS_PER_SESSION) return [reply(m.sessionId, 'session-closed', 'the session is closed to uploads')];
  // One URL per key; an agent asks for the next chunks' too, so that a busy session costs a request a minute, not one per chunk.
  const count = Math.min(m.count ?? 1, MAX_PRESIGN_BATCH, MAX_CHUNKS_PER_SESSION - m.seq);
  // Taken before signing, so that the agent is never told a URL lasts longer than it does.
  const expiresAt = new Date(deps.clock().getTime() + UPLOAD_URL_SECONDS * 1000).toISOString();
  const urls: string[] = [];
  for (let seq = m.seq; seq < m.seq + count; seq++) urls.push(await deps.recordings.presignPut(chunkKey(session.prefix, seq, session.format), UPLOAD_URL_SECONDS));
  const [url, ...following] = urls as [string, ...string[]];
  return [{ type: 'recording.url', v: TUNNEL_PROTOCOL_VERSION, sessionId: m.sessionId, seq: m.seq, url, ...(following.length > 0 ? { following } : {}), expiresAt }];
}

/**
 * The agent is done with a session: the manifest lists every chunk with its digest (read back from
 * storage), and the sessions table keeps the final digest that seals the chain.
 */
export async function endSession(deps: ControlPlaneDeps, agent: string, m: Msg<'session.end'>): Promise<ControlMessage[]> {
  const session = await ownSession(deps, agent, m.sessionId);
  if (!session) return [reply(m.sessionId, 'unknown-session', 'no such session for this agent')];
  const digests: string[] = [];
  let missing = false;
  for (let seq = 0; seq < m.chunkCount; seq++) {
    const body = await deps.recordings.get(chunkKey(session.prefix, seq, session.format));
    if (!body) {
      missing = true;
      break;
    }
    digests.push(chunkDigest(body));
  }
  const chained = !missing && (digests.length === 0 || digests[digests.length - 1] === m.finalDigest);
  const status = m.complete && chained ? 'complete' : 'incomplete';
  const manifest = {
    sessionId: session.sessionId,
    target: session.target,
    identity: session.identity,
    format: session.format,
    startedAt: session.startedAt,
    endedAt: m.endedAt,
    status,
    chunkCount: m.chunkCount,
    finalDigest: m.finalDigest,
    chunks: digests.map((sha256, seq) => ({ seq, key: chunkKey(session.prefix, seq, session.format), sha256 })),
  };
  await deps.recordings.put(`${session.prefix}manifest.json`, Buffer.from(JSON.stringify(manifest, null, 2)), 'application/json');
  await deps.sessions.finish(session.sessionId, { endedAt: m.endedAt, status, chunkCount: m.chunkCount, finalDigest: m.finalDigest });
  deps.log.info('session.ended', { sessionId: session.sessionId, status, chunks: m.chunkCount });
  return [{ type: 'session.ended', v: TUNNEL_PROTOCOL_VERSION, sessionId: session.sessionId, status }];
}

export function listSessions(deps: Pick<ControlPlaneDeps, 'sessions'>, filter: SessionFilter): Promise<SessionRecord[]> {
  return deps.sessions.query(filter).then((items) => items.sort((a, b) => b.startedAt.localeCompare(a.startedAt)));
}

export async function getSession(deps: Pick<ControlPlaneDeps, 'sessions'>, sessionId: string): Promise<SessionRecord> {
  const session = await deps.sessions.get(sessionId);
  if (!session) throw new NotFoundError(`no session ${sessionId}`);
  return session;
}

/** Short-lived download URLs for the manifest and every chunk; the download is itself an audit event. */
export async function recordingDownload(deps: ControlPlaneDeps, sessionId: string, caller: Identity) {
  const session = await getSession(deps, sessionId);
  if (session.status === 'live') throw new ForbiddenError('the session is still being recorded');
  const count = session.chunkCount ?? 0;
  const chunks = [];
  for (let seq = 0; seq < count; seq++) chunks.push({ seq, url: await deps.recordings.presignGet(chunkKey(session.prefix, seq, session.format), DOWNLOAD_URL_SECONDS) });
  await deps.audit.put({ eventId: randomUUID(), at: deps.clock().toISOString(), actor: caller.subject, action: 'recording.download', subject: sessionId });
  return {
    session,
    manifestUrl: await deps.recordings.presignGet(`${session.prefix}manifest.json`, DOWNLOAD_URL_SECONDS),
    chunks,
    expiresInSeconds: DOWNLOAD_URL_SECONDS,
  };
}
