import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../../core/log';
import { MAX_PRESIGN_BATCH, TUNNEL_PROTOCOL_VERSION, type ControlMessage } from '../../core/tunnel/messages';
import type { TunnelClient } from '../tunnel/tunnel-client';
import { genesisMeta, readMeta, recoverSession, sealedChunks, SessionSpool, writeMeta, type SessionMeta } from './spool';

export const DRAIN_INTERVAL_MS = 2_000;
export const DEFAULT_SPOOL_CAP_BYTES = 1024 * 1024 * 1024;
export const UPLOAD_TIMEOUT_MS = 30_000;
const REPLY_TIMEOUT_MS = 10_000;
/** A URL kept for a later chunk is used only while it has this long left: the upload must finish before it expires. */
const KEPT_URL_MARGIN_MS = UPLOAD_TIMEOUT_MS;

type Reply = Extract<ControlMessage, { type: 'recording.url' | 'session.ended' | 'error' }>;

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
  /**
   * Upload URLs per session for chunks `seq` onwards: each presign asks for the next chunks' URLs too
   * (a request to the control plane per MAX_PRESIGN_BATCH chunks, not per chunk). Forgotten when an
   * upload fails, so that a retry asks again.
   */
  private readonly kept = new Map<string, { seq: number; urls: string[]; expiresAt: number }>();

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
    if (m.type === 'recording.url') this.waiters.get(`url:${m.sessionId}:${m.seq}`)?.(m);
    else if (m.type === 'session.ended') this.waiters.get(`end:${m.sessionId}`)?.(m);
    else if (m.type === 'error' && m.inReplyTo) {
      for (const [k, w] of this.waiters) if (k.includes(`:${m.inReplyTo}`)) w(m);
    }
  }

  private ask(key: string, send: () => void): Promise<Reply | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(undefined), REPLY_TIMEOUT_MS).unref();
      const done = (r: Reply | undefined): void => {
        clearTimeout(timer);
        this.waiters.delete(key);
        resolve(r);
      };
      this.waiters.set(key, done);
      send();
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
      const dir = join(this.root, id);
      const meta = readMeta(dir);
      if (!meta) continue;
      if (!meta.startSent) {
        const sent = this.tunnel.send({ type: 'session.start', v: TUNNEL_PROTOCOL_VERSION, sessionId: meta.sessionId, target: meta.target, protocol: meta.protocol, format: meta.format, identity: meta.identity, startedAt: meta.startedAt });
        if (!sent.ok) return;
        this.setStartSent(dir, meta, true);
      }
      const chunks = sealedChunks(dir);
      for (const [i, chunk] of chunks.entries()) {
        // An open session will seal more chunks (one every 10 s): URLs for them come in the same request.
        // An ended one needs only those left; each URL is a signature the control plane computes.
        const url = await this.uploadUrl(dir, meta, chunk.seq, meta.ended ? chunks.length - i : MAX_PRESIGN_BATCH);
        try {
          const res = await fetch(url, { method: 'PUT', body: readFileSync(chunk.file), headers: { 'content-type': 'application/gzip' }, signal: AbortSignal.timeout(UPLOAD_TIMEOUT_MS) });
          if (!res.ok) throw new Error(`upload of ${meta.sessionId}/${chunk.seq} failed: HTTP ${res.status}`);
        } catch (e) {
          // The URL may be what failed (expired, a skewed clock): the retry asks for new ones.
          this.kept.delete(meta.sessionId);
          throw e;
        }
        this.spooled = Math.max(0, this.spooled - statSync(chunk.file).size);
        unlinkSync(chunk.file);
      }
      const current = readMeta(dir);
      if (current?.ended && sealedChunks(dir).length === 0 && !this.active.has(id)) {
        const reply = await this.ask(`end:${current.sessionId}`, () =>
          this.tunnel.send({
            type: 'session.end',
            v: TUNNEL_PROTOCOL_VERSION,
            sessionId: current.sessionId,
            endedAt: current.ended?.endedAt ?? new Date().toISOString(),
            chunkCount: current.nextSeq,
            finalDigest: current.prev,
            complete: current.ended?.complete ?? false,
          }),
        );
        if (reply?.type === 'session.ended') {
          this.kept.delete(current.sessionId);
          rmSync(dir, { recursive: true, force: true });
          this.log.info('recording.shipped', { sessionId: current.sessionId, chunks: current.nextSeq, status: reply.status });
        }
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
    if (spool) spool.setStartSent(sent);
    else writeMeta(dir, meta);
  }

  /** The chunk's upload URL: one kept from an earlier presign while it is still valid, else a new presign. */
  private async uploadUrl(dir: string, meta: SessionMeta, seq: number, wanted: number): Promise<string> {
    const kept = this.kept.get(meta.sessionId);
    const keptUrl = kept && kept.expiresAt - Date.now() > KEPT_URL_MARGIN_MS ? kept.urls[seq - kept.seq] : undefined;
    if (keptUrl) return keptUrl;
    const reply = await this.ask(`url:${meta.sessionId}:${seq}`, () =>
      this.tunnel.send({ type: 'recording.presign', v: TUNNEL_PROTOCOL_VERSION, sessionId: meta.sessionId, seq, count: Math.min(wanted, MAX_PRESIGN_BATCH) }),
    );
    if (reply?.type !== 'recording.url') {
      if (reply?.type === 'error' && reply.code === 'unknown-session') {
        this.setStartSent(dir, meta, false);
      }
      throw new Error(`no upload URL for ${meta.sessionId}/${seq}${reply?.type === 'error' ? `: ${reply.message}` : ''}`);
    }
    // An expiry that does not parse keeps nothing (NaN compares false).
    this.kept.set(meta.sessionId, { seq, urls: [reply.url, ...(reply.following ?? [])], expiresAt: Date.parse(reply.expiresAt) });
    return reply.url;
  }
}
