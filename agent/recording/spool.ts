import { createHash, type Hash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { CHUNK_MAX_BYTES, CHUNK_MAX_SECONDS, chunkDigest, GENESIS_DIGEST, gzipMember, headerMember, wholeMembersLength, type ChunkHeader, type RecordingFormat } from '../../core/recording/chunk';
import { PendingEvents } from './pending-events';

/**
 * Events reach the spool file within this time, or sooner once this many bytes are waiting. Each
 * flush is a gzip member with its own compressor state, a file write and a digest update, a cost per
 * flush that frequent small flushes multiply. A crash loses at most this much of a session (for
 * Postgres sessions, plus the recorder worker's poll: see pg-recorder.ts).
 */
export const SPOOL_FLUSH_MS = 1000;
export const SPOOL_FLUSH_BYTES = 256 * 1024;
/**
 * A busy session's buffer is kept between flushes: it fills to SPOOL_FLUSH_BYTES (its last line may
 * double it). Given back at each flush, it would be grown again through five sizes, its bytes copied
 * at each.
 */
export const PENDING_IDLE_BYTES = 2 * SPOOL_FLUSH_BYTES;

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

/**
 * A session's meta is a log: each change appends the whole meta as one line, and the last whole line
 * is the meta. Replacing a file by rename (or by truncation) makes ext4 write the new data out at once,
 * which blocked the proxy's thread for milliseconds at every change; an append does not. A log grown
 * past META_LOG_MAX_BYTES is rewritten to its last line (that once, by rename).
 */
const META = 'meta.log';
export const META_LOG_MAX_BYTES = 64 * 1024;
const OPEN = 'open.gz';
const sealedName = (seq: number): string => `${String(seq).padStart(8, '0')}.gz`;

function writeAtomic(file: string, data: Buffer | string): void {
  writeFileSync(`${file}.tmp`, data, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

/** The meta as last written; a line cut short by a crash is passed over for the one before it. */
export function readMeta(dir: string): SessionMeta | undefined {
  let log: string;
  try {
    log = readFileSync(join(dir, META), 'utf8');
  } catch {
    return undefined;
  }
  for (let end = log.lastIndexOf('\n'); end > 0; end = log.lastIndexOf('\n', end - 1)) {
    const start = log.lastIndexOf('\n', end - 1) + 1;
    try {
      return JSON.parse(log.slice(start, end)) as SessionMeta;
    } catch {
      // cut short: the line before it
    }
  }
  return undefined;
}

export function writeMeta(dir: string, meta: SessionMeta): void {
  const file = join(dir, META);
  const line = `${JSON.stringify(meta)}\n`;
  const fd = openSync(file, 'a', 0o600);
  let size: number;
  try {
    writeSync(fd, line);
    size = fstatSync(fd).size;
  } finally {
    closeSync(fd);
  }
  if (size > META_LOG_MAX_BYTES) writeAtomic(file, line);
}

/** Sealed chunks of a session waiting for upload, in order. */
export function sealedChunks(dir: string): { seq: number; file: string }[] {
  return readdirSync(dir)
    .filter((f) => /^\d{8}\.gz$/.test(f))
    .map((f) => ({ seq: Number(f.slice(0, 8)), file: join(dir, f) }))
    .sort((a, b) => a.seq - b.seq);
}

/**
 * One session's spool. Events wait in memory for at most SPOOL_FLUSH_MS (or SPOOL_FLUSH_BYTES), then
 * are compressed into one gzip member and appended to the open chunk's file, `open.gz`, in one
 * synchronous write (no write left pending in a thread pool). That file is the chunk as it will be
 * stored: its header member (sequence, previous digest), then the events' members, which any gunzip
 * reads as one stream. Sealing (at CHUNK_MAX_BYTES of events or every CHUNK_MAX_SECONDS) renames it:
 * the events are compressed once and written once, and the open chunk lives on disk, not in memory.
 * Nothing is removed here: the recording service deletes a chunk only after its upload.
 */
export class SessionSpool {
  /** The open chunk's file, opened at its first events. */
  private fd: number | undefined;
  /** Events not yet in the file. */
  private readonly pending = new PendingEvents(
    PENDING_IDLE_BYTES,
    (waiting) => {
      if (this.chunkEventBytes + waiting >= CHUNK_MAX_BYTES) this.sealOrReport();
      else if (waiting >= SPOOL_FLUSH_BYTES) this.flushOrReport();
      else this.scheduleFlush();
    },
    () => this.scheduleFlush(),
  );
  /** Event bytes (before compression) in the open chunk's file. */
  private chunkEventBytes = 0;
  /** Bytes of the open chunk's file, and their SHA-256 so far: the chunk's digest without reading it back. */
  private fileBytes = 0;
  private digest: Hash = createHash('sha256');
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly timer: NodeJS.Timeout;
  /**
   * Whether `end()` ran; read at every event. Not `meta.ended`: metas take several shapes (parsed from
   * meta.log, fields added as sessions end), and V8 logged that load as megamorphic (--log-ic).
   */
  private ended = false;

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
    this.timer = setInterval(() => this.sealOrReport(), CHUNK_MAX_SECONDS * 1000);
    this.timer.unref();
  }

  /** Stops without sealing, as a crash would: what was flushed is recovered at the next start. */
  abandon(): void {
    clearInterval(this.timer);
    clearTimeout(this.flushTimer);
    this.closeFile();
  }

  get sessionId(): string {
    return this.meta.sessionId;
  }

  /** Whether the control plane knows the session: set by the recording service, kept in the meta this spool rewrites. */
  setStartSent(sent: boolean): void {
    this.meta.startSent = sent;
    writeMeta(this.dir, this.meta);
  }

  /** One JSON line: an event object (ndjson) or an asciicast v2 header or event array. */
  append(event: object): void {
    if (!this.ended) this.pending.appendJson(JSON.stringify(event));
  }

  /**
   * A gzip member of whole event lines compressed elsewhere (the Postgres recorder's worker thread),
   * `eventBytes` of events before compression: appended to the open chunk as a flush would.
   */
  appendMember(member: Buffer, eventBytes: number): void {
    if (this.ended) return;
    try {
      this.flush();
      this.writeMember(member, eventBytes);
      if (this.chunkEventBytes >= CHUNK_MAX_BYTES) this.seal();
    } catch (e) {
      this.onError(e);
      this.meta.lost = true;
    }
  }

  /** Events written and not yet flushed reach the file within SPOOL_FLUSH_MS. */
  private scheduleFlush(): void {
    this.flushTimer ??= setTimeout(() => this.flushOrReport(), SPOOL_FLUSH_MS).unref();
  }

  /** One member and one file write for many events: per-event writes would cost a system call each on the hot path. */
  private flush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    const events = this.pending.whole();
    if (events.length === 0) return;
    this.writeMember(gzipMember(events), events.length);
    this.pending.clear();
  }

  /** Appends a member of `eventBytes` events to the open chunk's file (opening it with its header member). */
  private writeMember(member: Buffer, eventBytes: number): void {
    const bytes = this.fileBytes === 0 ? Buffer.concat([headerMember(chunkHeader(this.meta)), member]) : member;
    this.fd ??= openSync(join(this.dir, OPEN), 'w', 0o600);
    try {
      for (let at = 0; at < bytes.length; ) at += writeSync(this.fd, bytes, at, bytes.length - at);
    } catch (e) {
      // Part of the member may have reached the file: cut it back, so the retry cannot store half a member.
      ftruncateSync(this.fd, this.fileBytes);
      throw e;
    }
    this.digest.update(bytes);
    this.fileBytes += bytes.length;
    this.chunkEventBytes += eventBytes;
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

  /** Events were lost before they reached the spool: the recording is incomplete. True the first time. */
  markLost(): boolean {
    if (this.meta.lost) return false;
    this.meta.lost = true;
    writeMeta(this.dir, this.meta);
    return true;
  }

  /** Events that cannot reach the disk are kept up to one chunk's worth, then dropped: the recording is incomplete. */
  private failed(e: unknown): void {
    this.onError(e);
    if (this.pending.length < CHUNK_MAX_BYTES) return;
    this.pending.clear();
    this.meta.lost = true;
  }

  private closeFile(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  /** Seals the open chunk as the next chunk of the chain. */
  seal(): void {
    const sealed = this.sealChunk();
    if (sealed !== undefined) this.onSealed(sealed);
  }

  /**
   * Seals the open chunk without telling the recording service: the bytes now waiting for upload (0 when the
   * chunk had to be dropped), undefined when there was nothing to seal.
   */
  private sealChunk(): number | undefined {
    this.flush();
    if (this.fileBytes === 0) return undefined;
    const sealed = this.fileBytes;
    const digest = this.digest.digest('hex');
    this.closeFile();
    const open = join(this.dir, OPEN);
    this.fileBytes = 0;
    this.chunkEventBytes = 0;
    this.digest = createHash('sha256');
    if (this.hasRoom()) {
      renameSync(open, join(this.dir, sealedName(this.meta.nextSeq)));
      advance(this.dir, this.meta, digest);
      return sealed;
    }
    rmSync(open, { force: true });
    this.meta.lost = true;
    writeMeta(this.dir, this.meta);
    return 0;
  }

  end(complete: boolean): void {
    clearInterval(this.timer);
    // The end is written whatever happens to the last seal: a session that cannot seal is incomplete, not stuck.
    let sealed = 0;
    try {
      sealed = this.sealChunk() ?? 0;
    } catch (e) {
      this.onError(e);
      this.meta.lost = true;
    }
    this.closeFile();
    this.ended = true;
    this.meta.ended = { endedAt: new Date().toISOString(), complete: complete && !this.meta.lost };
    writeMeta(this.dir, this.meta);
    // Told only now: an upload started by the last seal reads the meta as ended and asks for the URLs
    // the session still needs, not for a batch of chunks to come.
    this.onSealed(sealed);
  }
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

/** Chunk `meta.nextSeq` is stored: the next one chains to it. */
function advance(dir: string, meta: SessionMeta, digest: string): void {
  meta.prev = digest;
  meta.nextSeq += 1;
  writeMeta(dir, meta);
}

/**
 * After a crash: the open chunk's whole members become the last chunk (a member cut short by a torn
 * write is dropped, and the recording marked lost), and the session is marked as ended incomplete (the
 * agent cannot know what it missed). A chunk renamed just before the crash, its meta not yet updated,
 * is chained in first.
 */
export function recoverSession(dir: string): SessionMeta | undefined {
  const meta = readMeta(dir);
  if (!meta) return undefined;
  for (const chunk of sealedChunks(dir)) if (chunk.seq === meta.nextSeq) advance(dir, meta, chunkDigest(readFileSync(chunk.file)));
  const open = join(dir, OPEN);
  if (existsSync(open)) {
    const stored = readFileSync(open);
    const whole = wholeMembersLength(stored);
    if (whole < stored.length) {
      meta.lost = true;
      truncateSync(open, whole);
    }
    if (whole > 0) {
      renameSync(open, join(dir, sealedName(meta.nextSeq)));
      advance(dir, meta, chunkDigest(stored.subarray(0, whole)));
    } else rmSync(open);
  }
  if (!meta.ended) meta.ended = { endedAt: new Date().toISOString(), complete: false };
  writeMeta(dir, meta);
  return meta;
}

export const genesisMeta = (m: Omit<SessionMeta, 'nextSeq' | 'prev' | 'startSent'>): SessionMeta => ({ ...m, nextSeq: 0, prev: GENESIS_DIGEST, startSent: false });
