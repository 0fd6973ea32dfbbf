import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../../core/log';
import { chunkDigest } from '../../core/recording/chunk';
import { MAX_PRESIGN_BATCH, TUNNEL_PROTOCOL_VERSION, type AgentMessage, type ControlMessage } from '../../core/tunnel/messages';
import type { TunnelClient } from '../tunnel/tunnel-client';
import { genesisMeta, readMeta, recoverSession, sealedChunks, SessionSpool, writeMeta, type SessionMeta } from './spool';

export const DRAIN_INTERVAL_MS = 2_000;
export const DEFAULT_SPOOL_CAP_BYTES = 1024 * 1024 * 1024;
export const UPLOAD_TIMEOUT_MS = 30_000;
const REPLY_TIMEOUT_MS = 10_000;

type Reply = Extract<ControlMessage, { type: 'session.started' | 'recording.url' | 'session.ended' | 'error' }>;

/** A sealed chunk as it is uploaded: S3 is told its SHA-256 (base64 of the digest) and length through the signed URL. */
interface ChunkUpload {
  readonly seq: number;
  readonly file: string;
  readonly sha256: string;
  readonly bytes: number;
}

/**
 * Recording on the agent: spools every session and ships sealed chunks to S3 with presigned PUT URLs
 * the control plane issues over the tunnel (the agent has no AWS credentials). A chunk leaves the
 * spool only after its upload succeeded; leftovers from before a restart are shipped first.
 */
export class RecordingService {
  private readonly active = new Map<string, SessionSpool>();
  private readonly waiters = new Map<string, (reply: Reply) => void>();
  private draining = false;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  /** Bytes of sealed chunks waiting in the spool. */
  private spooled = 0;
  private readonly fullListeners = new Set<() => void>();
  private readonly stoppers: (() => void)[] = [];
  private readonly lostListeners = new Set<(sessionId: string) => void>();

  constructor(
    readonly root: string,
    private readonly tunnel: TunnelClient,
    private readonly log: Logger,
    private readonly capBytes: number = DEFAULT_SPOOL_CAP_BYTES,
  ) {
    mkdirSync(root, { recursive: true, mode: 0o700 });
    tunnel.onMessage((m) => this.onMessage(m));
    tunnel.onConnected(() => this.drain());
  }

  /** True while the spool is at its disk cap (the control plane or S3 has been unreachable for long). */
  full(): boolean {
    return this.spooled >= this.capBytes;
  }

  /** Called once each time the spool reaches its cap. */
  onFull(listener: () => void): void {
    this.fullListeners.add(listener);
  }

  start(): void {
    for (const id of readdirSync(this.root)) {
      const dir = join(this.root, id);
      if (recoverSession(dir)) this.log.warn('recording.recovered', { sessionId: id });
      for (const c of sealedChunks(dir)) this.spooled += statSync(c.file).size;
    }
    this.timer = setInterval(() => this.drain(), DRAIN_INTERVAL_MS);
    this.timer.unref();
    this.drain();
  }

  stop(): void {
    clearInterval(this.timer);
    for (const stop of this.stoppers.splice(0)) stop();
    for (const spool of this.active.values()) spool.abandon();
  }

  /** Runs when the service stops (the Postgres recorder's worker). */
  onStop(stop: () => void): void {
    this.stoppers.push(stop);
  }

  /** A session's events compressed elsewhere (the Postgres recorder's worker), for its spool. */
  appendMember(sessionId: string, member: Buffer, eventBytes: number): void {
    this.active.get(sessionId)?.appendMember(member, eventBytes);
  }

  /** Events of the session were lost before its spool (the recorder's worker fell behind, or stopped): it is incomplete. */
  markLost(sessionId: string): void {
    if (!this.active.get(sessionId)?.markLost()) return;
    // Told after the event that found it lost: a listener may end the session, which is still reporting it.
    setImmediate(() => {
      for (const l of this.lostListeners) l(sessionId);
    });
  }

  /** Called once for each session whose recording lost events (a strict policy ends it). */
  onLost(listener: (sessionId: string) => void): void {
    this.lostListeners.add(listener);
  }

  reportError(component: string, e: unknown): void {
    this.log.error('recording.failed', { component, error: e instanceof Error ? e.message : String(e) });
  }

  begin(meta: Omit<SessionMeta, 'nextSeq' | 'prev' | 'startSent'>): SessionSpool {
    const spool = new SessionSpool(
      join(this.root, meta.sessionId),
      genesisMeta(meta),
      (bytes) => {
        const wasFull = this.full();
        this.spooled += bytes;
        if (!wasFull && this.full()) {
          this.log.error('recording.spool.full', { bytes: this.spooled, cap: this.capBytes });
          for (const l of this.fullListeners) l();
        }
        this.drain();
      },
      () => !this.full(),
      (e) => this.log.error('recording.spool.failed', { sessionId: meta.sessionId, error: e instanceof Error ? e.message : String(e) }),
    );
    this.active.set(meta.sessionId, spool);
    return spool;
  }

  end(sessionId: string, complete: boolean): void {
    this.active.get(sessionId)?.end(complete);
    this.active.delete(sessionId);
  }

  /** Sessions and chunks still waiting in the spool (for tests and health). */
  pending(): { sessions: number; chunks: number } {
    const ids = existsSync(this.root) ? readdirSync(this.root) : [];
    return { sessions: ids.length, chunks: ids.reduce((n, id) => n + sealedChunks(join(this.root, id)).length, 0) };
  }

  private onMessage(m: ControlMessage): void {
    if (m.type === 'session.started') this.waiters.get(`start:${m.sessionId}`)?.(m);
    else if (m.type === 'recording.url') this.waiters.get(`url:${m.sessionId}:${m.seq}`)?.(m);
    else if (m.type === 'session.ended') this.waiters.get(`end:${m.sessionId}`)?.(m);
    else if (m.type === 'error' && m.inReplyTo) {
      for (const [k, w] of this.waiters) if (k.includes(`:${m.inReplyTo}`)) w(m);
    }
  }

  /** Sends a request and waits for its answer (undefined when it could not be sent or none came in time). */
  private ask(key: string, message: AgentMessage): Promise<Reply | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(undefined), REPLY_TIMEOUT_MS).unref();
      const done = (r: Reply | undefined): void => {
        clearTimeout(timer);
        this.waiters.delete(key);
        resolve(r);
      };
      this.waiters.set(key, done);
      if (!this.tunnel.send(message).ok) done(undefined);
    });
  }

  /** Ships what can be shipped now; runs again if asked while running. */
  drain(): void {
    if (this.draining) {
      this.again = true;
      return;
    }
    this.draining = true;
    void this.drainOnce()
      .catch((e: unknown) => this.log.warn('recording.upload.deferred', { error: e instanceof Error ? e.message : String(e) }))
      .finally(() => {
        this.draining = false;
        if (this.again) {
          this.again = false;
          this.drain();
        }
      });
  }

  private async drainOnce(): Promise<void> {
    for (const id of readdirSync(this.root)) {
      if (!this.tunnel.connected) return;
      try {
        await this.ship(join(this.root, id));
      } catch (e) {
        // One session's trouble (a refused start, an expired URL) waits for the next drain without holding up the others.
        this.log.warn('recording.upload.deferred', { sessionId: id, error: e instanceof Error ? e.message : String(e) });
      }
    }
  }

  /** Announces a session (once the control plane confirms it, its chunks may be presigned), uploads its sealed chunks, ends it. */
  private async ship(dir: string): Promise<void> {
    const meta = readMeta(dir);
    if (!meta) return;
    if (!meta.startSent) {
      const { sessionId, target, protocol, format, identity, startedAt } = meta;
      const reply = await this.ask(`start:${sessionId}`, { type: 'session.start', v: TUNNEL_PROTOCOL_VERSION, sessionId, target, protocol, format, identity, startedAt });
      if (reply?.type !== 'session.started') throw new Error(`session ${sessionId} not started${reply?.type === 'error' ? `: ${reply.message}` : ''}`);
      this.setStartSent(dir, meta, true);
    }
    const chunks = sealedChunks(dir);
    for (let i = 0; i < chunks.length; ) {
      const batch = contiguousRun(chunks, i, MAX_PRESIGN_BATCH).map(describeChunk);
      const urls = await this.uploadUrls(dir, meta, batch);
      for (const [j, chunk] of batch.entries()) {
        const res = await fetch(urls[j] as string, {
          method: 'PUT',
          body: readFileSync(chunk.file),
          headers: { 'content-type': 'application/gzip', 'x-amz-checksum-sha256': Buffer.from(chunk.sha256, 'hex').toString('base64') },
          signal: AbortSignal.timeout(UPLOAD_TIMEOUT_MS),
        });
        if (!res.ok) throw new Error(`upload of ${meta.sessionId}/${chunk.seq} failed: HTTP ${res.status}`);
        this.spooled = Math.max(0, this.spooled - chunk.bytes);
        unlinkSync(chunk.file);
      }
      i += batch.length;
    }
    const current = readMeta(dir);
    if (current?.ended && sealedChunks(dir).length === 0 && !this.active.has(current.sessionId)) {
      const reply = await this.ask(`end:${current.sessionId}`, {
        type: 'session.end',
        v: TUNNEL_PROTOCOL_VERSION,
        sessionId: current.sessionId,
        endedAt: current.ended.endedAt,
        chunkCount: current.nextSeq,
        finalDigest: current.prev,
        complete: current.ended.complete,
      });
      if (reply?.type === 'session.ended') {
        rmSync(dir, { recursive: true, force: true });
        this.log.info('recording.shipped', { sessionId: current.sessionId, chunks: current.nextSeq, status: reply.status });
      }
    }
  }

  /**
   * An open session's spool rewrites its meta at every seal, from its own copy: the flag goes there,
   * or the next seal would undo it (and every drain after it would announce the session again).
   */
  private setStartSent(dir: string, meta: SessionMeta, sent: boolean): void {
    meta.startSent = sent;
    const spool = this.active.get(meta.sessionId);
    if (spool) return spool.setStartSent(sent);
    // Read again: the session may have ended (and its spool written the end) while the answer was awaited.
    const current = readMeta(dir) ?? meta;
    writeMeta(dir, { ...current, startSent: sent });
  }

  /** One URL per chunk of the batch, each signed for that chunk's length and SHA-256. */
  private async uploadUrls(dir: string, meta: SessionMeta, batch: readonly ChunkUpload[]): Promise<string[]> {
    const first = batch[0] as ChunkUpload;
    const reply = await this.ask(`url:${meta.sessionId}:${first.seq}`, {
      type: 'recording.presign',
      v: TUNNEL_PROTOCOL_VERSION,
      sessionId: meta.sessionId,
      seq: first.seq,
      chunks: batch.map(({ sha256, bytes }) => ({ sha256, bytes })),
    });
    if (reply?.type !== 'recording.url') {
      if (reply?.type === 'error' && reply.code === 'unknown-session') this.setStartSent(dir, meta, false);
      throw new Error(`no upload URL for ${meta.sessionId}/${first.seq}${reply?.type === 'error' ? `: ${reply.message}` : ''}`);
    }
    const urls = [reply.url, ...(reply.following ?? [])];
    if (urls.length !== batch.length) throw new Error(`${urls.length} upload URLs for ${batch.length} chunks of ${meta.sessionId}`);
    return urls;
  }
}

/** Up to `max` chunks from `from` whose numbers follow each other (a presign names a first seq and counts on). */
function contiguousRun<T extends { seq: number }>(chunks: readonly T[], from: number, max: number): T[] {
  const run: T[] = [];
  for (let i = from; i < chunks.length && run.length < max; i++) {
    const chunk = chunks[i] as T;
    if (run.length > 0 && chunk.seq !== (run[run.length - 1] as T).seq + 1) break;
    run.push(chunk);
  }
  return run;
}

/** The digest is of the file's bytes as they are uploaded: the chain's digest of the stored chunk. */
function describeChunk(chunk: { seq: number; file: string }): ChunkUpload {
  const body = readFileSync(chunk.file);
  return { ...chunk, sha256: chunkDigest(body), bytes: body.length };
}
