import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { CHUNK_MAX_BYTES, CHUNK_MAX_SECONDS, chunkDigest, encodeChunk, GENESIS_DIGEST, type RecordingFormat } from '../../core/recording/chunk';

/** Events reach the spool file within this time, or sooner once this many bytes are waiting. */
export const SPOOL_FLUSH_MS = 50;
export const SPOOL_FLUSH_BYTES = 64 * 1024;
const INITIAL_CHUNK_BUFFER_BYTES = 64 * 1024;

export interface SessionMeta {
  readonly sessionId: string;
  readonly target: string;
  readonly protocol: string;
  readonly format: RecordingFormat;
  readonly identity: { subject: string; name: string; email?: string; groups: string[] };
  readonly startedAt: string;
  nextSeq: number;
  prev: string;
  startSent: boolean;
  /** Set when events had to be dropped (spool full under best-effort): the recording is incomplete. */
  lost?: boolean;
  ended?: { endedAt: string; complete: boolean };
}

const META = 'meta.json';
const OPEN = 'open.log';
const sealedName = (seq: number): string => `${String(seq).padStart(8, '0')}.gz`;

function writeAtomic(file: string, data: Buffer | string): void {
  writeFileSync(`${file}.tmp`, data, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

export function readMeta(dir: string): SessionMeta | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, META), 'utf8')) as SessionMeta;
  } catch {
    return undefined;
  }
}

export function writeMeta(dir: string, meta: SessionMeta): void {
  writeAtomic(join(dir, META), JSON.stringify(meta));
}

/** Sealed chunks of a session waiting for upload, in order. */
export function sealedChunks(dir: string): { seq: number; file: string }[] {
  return readdirSync(dir)
    .filter((f) => /^\d{8}\.gz$/.test(f))
    .map((f) => ({ seq: Number(f.slice(0, 8)), file: join(dir, f) }))
    .sort((a, b) => a.seq - b.seq);
}

/**
 * One session's spool: events are appended, in order, to `open.log` (batched: within SPOOL_FLUSH_MS); a chunk is sealed (gzip, chained
 * header, written atomically) at CHUNK_MAX_BYTES or every CHUNK_MAX_SECONDS. Nothing is removed here:
 * the uploader deletes a chunk only after its upload succeeded.
 */
export class SessionSpool {
  private stream: WriteStream;
  /**
   * The open chunk's bytes. Kept as one growing buffer, not as strings: thousands of live strings per
   * second would be promoted to the old generation and slow every session down with full collections.
   */
  private body = Buffer.allocUnsafe(INITIAL_CHUNK_BUFFER_BYTES);
  private used = 0;
  /** Bytes of `body` already handed to the spool file; the rest follows within SPOOL_FLUSH_MS. */
  private written = 0;
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly dir: string,
    private readonly meta: SessionMeta,
    private readonly onSealed: (bytes: number) => void,
    /** False when the spool is over its disk cap: the chunk is dropped and the recording marked incomplete. */
    private readonly hasRoom: () => boolean = () => true,
    private readonly onError: (e: unknown) => void = () => undefined,
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeMeta(dir, meta);
    this.stream = this.openStream('a');
    // A timer must never throw: a failed seal is reported, and the events stay in the buffer.
    this.timer = setInterval(() => {
      try {
        this.seal();
      } catch (e) {
        this.onError(e);
      }
    }, CHUNK_MAX_SECONDS * 1000);
    this.timer.unref();
  }

  private openStream(flags: 'a' | 'w'): WriteStream {
    const stream = createWriteStream(join(this.dir, OPEN), { flags, mode: 0o600 });
    stream.on('error', (e) => this.onError(e));
    return stream;
  }

  /** Stops the timers without sealing, as a crash would (the spool on disk is recovered at the next start). */
  abandon(): void {
    clearInterval(this.timer);
    clearTimeout(this.flushTimer);
    this.stream.end();
  }

  get sessionId(): string {
    return this.meta.sessionId;
  }

  /** One JSON line: an event object (ndjson) or an asciicast v2 header or event array. */
  append(event: object): void {
    this.appendJson(JSON.stringify(event));
  }

  /** One line of JSON text the caller encoded itself (the hot Postgres events are, without objects). */
  appendJson(json: string): void {
    if (this.meta.ended) return;
    // UTF-8 takes at most 3 bytes per UTF-16 unit: room for that, then one write and no measuring pass.
    const room = json.length * 3 + 1;
    if (this.used + room > this.body.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.body.length * 2, this.used + room));
      this.body.copy(grown, 0, 0, this.used);
      this.body = grown;
    }
    this.used += this.body.write(json, this.used);
    this.body[this.used++] = 0x0a;
    if (this.used >= CHUNK_MAX_BYTES) this.seal();
    else if (this.used - this.written >= SPOOL_FLUSH_BYTES) this.flush();
    else this.flushTimer ??= setTimeout(() => this.flush(), SPOOL_FLUSH_MS);
  }

  /** One file write for many events: per-event writes would cost a system call each on the hot path. */
  private flush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.used === this.written) return;
    // A copy: the buffer is reused for the next chunk while the write may still be pending.
    this.stream.write(Buffer.from(this.body.subarray(this.written, this.used)));
    this.written = this.used;
  }

  /** Seals what is buffered as the next chunk of the chain. */
  seal(): void {
    if (this.used === 0) return;
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    let sealed = 0;
    if (this.hasRoom()) sealed = sealChunk(this.dir, this.meta, this.body.subarray(0, this.used));
    else {
      this.meta.lost = true;
      writeMeta(this.dir, this.meta);
    }
    this.used = 0;
    this.written = 0;
    this.stream.end();
    this.stream = this.openStream('w');
    this.onSealed(sealed);
  }

  end(complete: boolean): void {
    clearInterval(this.timer);
    this.seal();
    this.stream.end();
    this.meta.ended = { endedAt: new Date().toISOString(), complete: complete && !this.meta.lost };
    writeMeta(this.dir, this.meta);
    this.onSealed(0);
  }
}

/** Writes `body` as chunk `meta.nextSeq`, chained to the previous one, and advances the meta; returns its size. */
export function sealChunk(dir: string, meta: SessionMeta, body: Buffer): number {
  const chunk = encodeChunk(
    { twokey: 'recording-chunk', v: 1, sessionId: meta.sessionId, seq: meta.nextSeq, format: meta.format, prev: meta.prev, createdAt: new Date().toISOString() },
    body,
  );
  writeAtomic(join(dir, sealedName(meta.nextSeq)), chunk);
  meta.prev = chunkDigest(chunk);
  meta.nextSeq += 1;
  writeMeta(dir, meta);
  return chunk.length;
}

/**
 * After a crash: what reached `open.log` becomes the last chunk, and the session is marked as ended
 * incomplete (the agent cannot know what it missed).
 */
export function recoverSession(dir: string): SessionMeta | undefined {
  const meta = readMeta(dir);
  if (!meta) return undefined;
  const open = join(dir, OPEN);
  if (existsSync(open) && statSync(open).size > 0) {
    sealChunk(dir, meta, readFileSync(open));
    rmSync(open);
  }
  if (!meta.ended) meta.ended = { endedAt: new Date().toISOString(), complete: false };
  writeMeta(dir, meta);
  return meta;
}

export const genesisMeta = (m: Omit<SessionMeta, 'nextSeq' | 'prev' | 'startSent'>): SessionMeta => ({ ...m, nextSeq: 0, prev: GENESIS_DIGEST, startSent: false });
