import { SliceRun } from './slice-run';

/**
 * Output for a session whose server messages may be rewritten: messages that pass unchanged are kept
 * as ranges of the chunk they arrived in (a SliceRun, adjacent ones coalesced, copied only when a
 * rewritten message must follow them), rewritten ones are written straight into one buffer, and
 * everything leaves in order, in as few writes as possible per server chunk.
 */
/** One output buffer; a rewritten message larger than this gets its own. */
const BATCH_BYTES = 64 * 1024;
/** Output buffers kept for reuse once the socket has taken their bytes. */
const MAX_POOLED_BATCHES = 8;

/** Sends bytes; calls `written` once the socket no longer needs them. */
export type BatchEmitter = (bytes: Buffer, written?: () => void) => void;

export class ByteBatch {
  private buf: Buffer = Buffer.allocUnsafe(BATCH_BYTES);
  private readonly pool: Buffer[] = [];
  private used = 0;
  /** While set, the pending range goes out as it is (nothing rewritten precedes it). */
  private direct = false;
  private readonly run = new SliceRun((slice) => (this.direct ? this.emit(slice) : this.copyIn(slice)));

  constructor(private readonly emit: BatchEmitter) {}

  add(src: Buffer, start: number, end: number): void {
    this.run.add(src, start, end);
  }

  /** Room for `n` bytes at `offset` of `target`, for the caller to write now. */
  reserve(n: number): { target: Buffer; offset: number } {
    this.run.flush();
    if (this.used + n > this.buf.length) this.flushBuffer();
    // A large message gets a buffer of its own, sent (like any buffer) only once it has been written.
    if (n > this.buf.length) this.buf = Buffer.allocUnsafe(n);
    const offset = this.used;
    this.used += n;
    return { target: this.buf, offset };
  }

  flush(): void {
    if (this.used === 0) {
      // Nothing rewritten since the last flush: the unchanged range goes out without a copy.
      this.direct = true;
      this.run.flush();
      this.direct = false;
      return;
    }
    this.run.flush();
    this.flushBuffer();
  }

  /** Puts an unchanged range behind what is already in the buffer (a copy, or its own write when large). */
  private copyIn(slice: Buffer): void {
    const n = slice.length;
    if (n > BATCH_BYTES / 2 || this.used + n > this.buf.length) {
      this.flushBuffer();
      if (n > BATCH_BYTES / 2) {
        this.emit(slice);
        return;
      }
    }
    slice.copy(this.buf, this.used);
    this.used += n;
  }

  private flushBuffer(): void {
    if (this.used === 0) return;
    const sent = this.buf;
    if (sent.length === BATCH_BYTES) this.emit(sent.subarray(0, this.used), () => this.recycle(sent));
    else this.emit(sent.subarray(0, this.used));
    this.buf = this.pool.pop() ?? Buffer.allocUnsafe(BATCH_BYTES);
    this.used = 0;
  }

  private recycle(sent: Buffer): void {
    if (this.pool.length < MAX_POOLED_BATCHES) this.pool.push(sent);
  }
}
