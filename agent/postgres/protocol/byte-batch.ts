/**
 * Output for a session whose server messages may be rewritten: messages that pass unchanged are kept
 * as ranges of the chunk they arrived in (adjacent ones coalesced, copied only when a rewritten message
 * must follow them), rewritten ones are written straight into one buffer, and everything leaves in
 * order, in as few writes as possible per server chunk.
 */
export class ByteBatch {
  static readonly SIZE = 64 * 1024;
  private buf = Buffer.allocUnsafe(ByteBatch.SIZE);
  private used = 0;
  private run: Buffer | undefined;
  private runStart = 0;
  private runEnd = 0;

  constructor(private readonly emit: (bytes: Buffer) => void) {}

  add(src: Buffer, start: number, end: number): void {
    if (this.run === src && this.runEnd === start) {
      this.runEnd = end;
      return;
    }
    this.settleRun();
    this.run = src;
    this.runStart = start;
    this.runEnd = end;
  }

  /** Room for `n` bytes at `offset` of `target`, for the caller to write now. */
  reserve(n: number): { target: Buffer; offset: number } {
    this.settleRun();
    if (this.used + n > this.buf.length) this.flushBuffer();
    // A large message gets a buffer of its own, sent (like any buffer) only once it has been written.
    if (n > this.buf.length) this.buf = Buffer.allocUnsafe(n);
    const offset = this.used;
    this.used += n;
    return { target: this.buf, offset };
  }

  flush(): void {
    if (this.used === 0 && this.run) {
      // Nothing rewritten since the last flush: the unchanged range goes out without a copy.
      const run = this.run;
      this.run = undefined;
      this.emit(this.runStart === 0 && this.runEnd === run.length ? run : run.subarray(this.runStart, this.runEnd));
      return;
    }
    this.settleRun();
    this.flushBuffer();
  }

  /** Moves the pending unchanged range behind what is already in the buffer (a copy, or its own write when large). */
  private settleRun(): void {
    const run = this.run;
    if (!run) return;
    this.run = undefined;
    const n = this.runEnd - this.runStart;
    if (n > ByteBatch.SIZE / 2 || this.used + n > this.buf.length) {
      this.flushBuffer();
      if (n > ByteBatch.SIZE / 2) {
        this.emit(run.subarray(this.runStart, this.runEnd));
        return;
      }
    }
    run.copy(this.buf, this.used, this.runStart, this.runEnd);
    this.used += n;
  }

  private flushBuffer(): void {
    if (this.used === 0) return;
    this.emit(this.buf.subarray(0, this.used));
    this.buf = Buffer.allocUnsafe(ByteBatch.SIZE);
    this.used = 0;
  }
}
