import { closeSync, existsSync, fstatSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { CHUNK_MAX_BYTES, CHUNK_MAX_SECONDS, ChunkEncoder, chunkDigest, GENESIS_DIGEST, GZIP_MEMBER_BYTES, type ChunkHeader, type RecordingFormat } from '../../core/recording/chunk';
import { JsonLineBuffer } from './json-line-buffer';

/** Events reach the spool file within this time, or sooner once this many bytes are waiting. */
export const SPOOL_FLUSH_MS = 50;
export const SPOOL_FLUSH_BYTES = 64 * 1024;
const INITIAL_PENDING_BYTES = 16 * 1024;

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
 * One session's spool: events are appended, in order, to `open.log` (batched: within SPOOL_FLUSH_MS,
 * one synchronous write each time, so that no write is left pending in a thread pool); a chunk is
 * sealed (gzip, chained header, written atomically) from that file at CHUNK_MAX_BYTES or every
 * CHUNK_MAX_SECONDS. The open chunk lives in the file, not in memory: a session holds at most a
 * flush's worth of events. Nothing is removed here: the uploader deletes a chunk only after its upload.
 */
export class SessionSpool {
  private fd: number;
  /** Events not yet in `open.log`: bytes, not strings (thousands of live strings a second would wake the old-generation collector). */
  private readonly pending = new JsonLineBuffer(INITIAL_PENDING_BYTES);
  /** Where the line being written began (-1: none open). */
  private lineStart = -1;
  /** Bytes of the open chunk already in `open.log`. */
  private fileBytes = 0;
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
    this.fd = openSync(join(dir, OPEN), 'a', 0o600);
    this.fileBytes = fstatSync(this.fd).size;
    this.timer = setInterval(() => this.sealOrReport(), CHUNK_MAX_SECONDS * 1000);
    this.timer.unref();
  }

  /** Stops without sealing, as a crash would: what was flushed is recovered at the next start. */
  abandon(): void {
    clearInterval(this.timer);
    clearTimeout(this.flushTimer);
    closeSync(this.fd);
  }

  get sessionId(): string {
    return this.meta.sessionId;
  }

  /** One JSON line: an event object (ndjson) or an asciicast v2 header or event array. */
  append(event: object): void {
    this.appendJson(JSON.stringify(event));
  }

  /** One line of JSON text the caller encoded itself. */
  appendJson(json: string): void {
    this.beginLine()?.json(json);
    this.endLine();
  }

  /**
   * The buffer one event is written into, in place (the hot Postgres events are, byte by byte); then
   * `endLine()`. Undefined once the session has ended. A line left unfinished (its writer failed) is
   * dropped, so that half an event never reaches the file.
   */
  beginLine(): JsonLineBuffer | undefined {
    if (this.meta.ended) return undefined;
    this.dropUnfinishedLine();
    this.lineStart = this.pending.length;
    return this.pending;
  }

  endLine(): void {
    if (this.lineStart < 0) return;
    this.lineStart = -1;
    this.pending.newline();
    const waiting = this.pending.length;
    if (this.fileBytes + waiting >= CHUNK_MAX_BYTES) this.sealOrReport();
    else if (waiting >= SPOOL_FLUSH_BYTES) this.flushOrReport();
    else this.flushTimer ??= setTimeout(() => this.flushOrReport(), SPOOL_FLUSH_MS);
  }

  private dropUnfinishedLine(): void {
    if (this.lineStart >= 0) this.pending.truncate(this.lineStart);
    this.lineStart = -1;
  }

  /** One file write for many events: per-event writes would cost a system call each on the hot path. */
  private flush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.dropUnfinishedLine();
    const bytes = this.pending.bytes;
    const length = this.pending.length;
    try {
      for (let at = 0; at < length; ) at += writeSync(this.fd, bytes, at, length - at);
    } catch (e) {
      // Part of the batch may have reached the file: cut it back, so the retry cannot store half a line twice.
      ftruncateSync(this.fd, this.fileBytes);
      throw e;
    }
    this.fileBytes += length;
    this.pending.reset();
  }

  /** Timers and event writers must never throw: failures are reported, and the events wait for the next try. */
  private flushOrReport(): void {
    try {
      this.flush();
    } catch (e) {
      this.failed(e);
    }
  }

  private sealOrReport(): void {
    try {
      this.seal();
    } catch (e) {
      this.failed(e);
    }
  }

  /** Events that cannot reach the disk are kept up to one chunk's worth, then dropped: the recording is incomplete. */
  private failed(e: unknown): void {
    this.onError(e);
    if (this.pending.length < CHUNK_MAX_BYTES) return;
    this.pending.reset();
    this.meta.lost = true;
  }

  /** Seals the open chunk as the next chunk of the chain. */
  seal(): void {
    this.flush();
    if (this.fileBytes === 0) return;
    let sealed = 0;
    if (this.hasRoom()) sealed = sealChunkFromFile(this.dir, this.meta, join(this.dir, OPEN));
    else {
      this.meta.lost = true;
      writeMeta(this.dir, this.meta);
    }
    ftruncateSync(this.fd, 0);
    this.fileBytes = 0;
    this.onSealed(sealed);
  }

  end(complete: boolean): void {
    clearInterval(this.timer);
    // The end is written whatever happens to the last seal: a session that cannot seal is incomplete, not stuck.
    try {
      this.seal();
    } catch (e) {
      this.onError(e);
      this.meta.lost = true;
    }
    closeSync(this.fd);
    this.meta.ended = { endedAt: new Date().toISOString(), complete: complete && !this.meta.lost };
    writeMeta(this.dir, this.meta);
    this.onSealed(0);
  }
}

/**
 * Writes a file's events as chunk `meta.nextSeq`, chained to the previous one, and advances the meta;
 * returns its size. Read a gzip member's worth at a time: a chunk's events are never all in memory.
 */
function sealChunkFromFile(dir: string, meta: SessionMeta, file: string): number {
  const encoder = new ChunkEncoder(chunkHeader(meta));
  const piece = Buffer.allocUnsafe(GZIP_MEMBER_BYTES);
  const fd = openSync(file, 'r');
  try {
    for (let n = readSync(fd, piece, 0, piece.length, null); n > 0; n = readSync(fd, piece, 0, piece.length, null)) encoder.add(piece.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return storeChunk(dir, meta, encoder.finish());
}

const chunkHeader = (meta: SessionMeta): ChunkHeader => ({
  twokey: 'recording-chunk',
  v: 1,
  sessionId: meta.sessionId,
  seq: meta.nextSeq,
  format: meta.format,
  prev: meta.prev,
  createdAt: new Date().toISOString(),
});

function storeChunk(dir: string, meta: SessionMeta, chunk: Buffer): number {
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
    sealChunkFromFile(dir, meta, open);
    rmSync(open);
  }
  if (!meta.ended) meta.ended = { endedAt: new Date().toISOString(), complete: false };
  writeMeta(dir, meta);
  return meta;
}

export const genesisMeta = (m: Omit<SessionMeta, 'nextSeq' | 'prev' | 'startSent'>): SessionMeta => ({ ...m, nextSeq: 0, prev: GENESIS_DIGEST, startSent: false });
