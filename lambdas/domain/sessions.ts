import { randomUUID } from 'node:crypto';
import { GENESIS_DIGEST, type RecordingFormat } from '../../core/recording/chunk';
import { principalKey, type Identity } from '../../core/identity/identity';
import { targetsOfAgent } from '../../core/policy/decide';
import { TUNNEL_PROTOCOL_VERSION, type AgentMessage, type ControlMessage } from '../../core/tunnel/messages';
import { type SessionFilter, type SessionPage, type SessionRecord, type SessionStatus } from '../store/session-store';
import { DEFAULT_PAGE_ITEMS } from '../store/page-token';
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
  const created = await deps.sessions.create({
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
  // A repeated start (its answer was lost) is answered again, but only for the agent that started the session.
  if (created === 'exists' && !(await ownSession(deps, agent, m.sessionId))) return [reply(m.sessionId, 'unknown-session', 'no such session for this agent')];
  return [{ type: 'session.started', v: TUNNEL_PROTOCOL_VERSION, sessionId: m.sessionId }];
}

async function ownSession(deps: ControlPlaneDeps, agent: string, sessionId: string): Promise<SessionRecord | undefined> {
  const session = await deps.sessions.get(sessionId);
  return session?.agent === agent ? session : undefined;
}

/**
 * URLs for sealed chunks: each is signed for the chunk's length and SHA-256, which are kept here
 * first, so that S3 stores those bytes or nothing under the key and the manifest is built from what
 * was declared, without reading a chunk back. A chunk number keeps its first declaration.
 */
export async function presignChunk(deps: ControlPlaneDeps, agent: string, m: Msg<'recording.presign'>): Promise<ControlMessage[]> {
  const session = await ownSession(deps, agent, m.sessionId);
  if (!session) return [reply(m.sessionId, 'unknown-session', 'no such session for this agent')];
  if (session.status !== 'live' || m.seq + m.chunks.length > MAX_CHUNKS_PER_SESSION) return [reply(m.sessionId, 'session-closed', 'the session is closed to uploads')];
  // Taken before signing, so that the agent is never told a URL lasts longer than it does.
  const expiresAt = new Date(deps.clock().getTime() + UPLOAD_URL_SECONDS * 1000).toISOString();
  const urls: string[] = [];
  for (const [i, content] of m.chunks.entries()) {
    const seq = m.seq + i;
    if ((await deps.chunks.declare({ sessionId: session.sessionId, seq, ...content })) === 'conflict') {
      deps.log.warn('recording.chunk.conflict', { agent, sessionId: session.sessionId, seq });
      return [reply(m.sessionId, 'chunk-conflict', `chunk ${seq} was declared with other content`)];
    }
    urls.push(await deps.recordings.presignPut(chunkKey(session.prefix, seq, session.format), UPLOAD_URL_SECONDS, content));
  }
  const [url, ...following] = urls as [string, ...string[]];
  return [{ type: 'recording.url', v: TUNNEL_PROTOCOL_VERSION, sessionId: m.sessionId, seq: m.seq, url, ...(following.length > 0 ? { following } : {}), expiresAt }];
}

/**
 * The agent is done with a session: the manifest lists every chunk with the digest declared for it
 * (S3 checked each upload against it) and is written once; the sessions table keeps the final
 * digest that seals the chain. A session ends once: a repeated end is answered with the status it
 * got and changes nothing.
 */
export async function endSession(deps: ControlPlaneDeps, agent: string, m: Msg<'session.end'>): Promise<ControlMessage[]> {
  const session = await ownSession(deps, agent, m.sessionId);
  if (!session) return [reply(m.sessionId, 'unknown-session', 'no such session for this agent')];
  const ended = (status: Exclude<SessionStatus, 'live'>): ControlMessage[] => [{ type: 'session.ended', v: TUNNEL_PROTOCOL_VERSION, sessionId: session.sessionId, status }];
  if (session.status !== 'live') return ended(session.status);
  const declared = await deps.chunks.list(session.sessionId, Math.min(m.chunkCount, MAX_CHUNKS_PER_SESSION));
  const stored = await deps.recordings.sizes(session.prefix);
  const uploaded = declared.filter((c, i) => c.seq === i && stored.get(chunkKey(session.prefix, c.seq, session.format)) === c.bytes);
  const chained = uploaded.length === m.chunkCount && (m.chunkCount === 0 ? m.finalDigest === GENESIS_DIGEST : uploaded[m.chunkCount - 1]?.sha256 === m.finalDigest);
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
    chunks: uploaded.map((c) => ({ seq: c.seq, key: chunkKey(session.prefix, c.seq, session.format), sha256: c.sha256 })),
  };
  // Written before the session is marked ended: an end retried after a crash in between finds the manifest kept and finishes.
  await deps.recordings.putOnce(`${session.prefix}manifest.json`, Buffer.from(JSON.stringify(manifest, null, 2)), 'application/json');
  const finished = await deps.sessions.finish(session.sessionId, { endedAt: m.endedAt, status, chunkCount: m.chunkCount, finalDigest: m.finalDigest });
  if (finished === 'already-ended') {
    const held = (await deps.sessions.get(session.sessionId))?.status;
    return ended(held === 'complete' || held === 'incomplete' ? held : status);
  }
  deps.log.info('session.ended', { sessionId: session.sessionId, status, chunks: m.chunkCount });
  return ended(status);
}

/** A page of sessions, newest first. */
export function listSessions(deps: Pick<ControlPlaneDeps, 'sessions'>, filter: SessionFilter, page: { limit?: number; next?: string }): Promise<SessionPage> {
  return deps.sessions.query(filter, { limit: page.limit ?? DEFAULT_PAGE_ITEMS, next: page.next });
}

export async function getSession(deps: Pick<ControlPlaneDeps, 'sessions'>, sessionId: string): Promise<SessionRecord> {
  const session = await deps.sessions.get(sessionId);
  if (!session) throw new NotFoundError(`no session ${sessionId}`);
  return session;
}

/** Chunk URLs one download response carries (a Lambda response is at most 6 MB; a URL is about 1.5 KB). */
export const DOWNLOAD_PAGE_CHUNKS = 500;

/**
 * Short-lived download URLs for the manifest and a page of chunks (from `fromSeq`, at most `limit`),
 * with the seq of the next page while there is one. Each page fetched is an audit event.
 */
export async function recordingDownload(deps: ControlPlaneDeps, sessionId: string, caller: Identity, page: { fromSeq?: number; limit?: number } = {}) {
  const session = await getSession(deps, sessionId);
  if (session.status === 'live') throw new ForbiddenError('the session is still being recorded');
  const count = session.chunkCount ?? 0;
  const from = Math.max(0, page.fromSeq ?? 0);
  const to = Math.min(count, from + Math.min(Math.max(1, page.limit ?? DOWNLOAD_PAGE_CHUNKS), DOWNLOAD_PAGE_CHUNKS));
  const chunks = [];
  for (let seq = from; seq < to; seq++) chunks.push({ seq, url: await deps.recordings.presignGet(chunkKey(session.prefix, seq, session.format), DOWNLOAD_URL_SECONDS) });
  await deps.audit.put({ eventId: randomUUID(), at: deps.clock().toISOString(), actor: principalKey(caller), action: 'recording.download', subject: sessionId, detail: { fromSeq: from, chunks: chunks.length } });
  return {
    session,
    manifestUrl: await deps.recordings.presignGet(`${session.prefix}manifest.json`, DOWNLOAD_URL_SECONDS),
    chunks,
    ...(to < count ? { nextSeq: to } : {}),
    expiresInSeconds: DOWNLOAD_URL_SECONDS,
  };
}
