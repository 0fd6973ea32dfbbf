/**
 * Coalesces adjacent ranges of one buffer into a single slice: consecutive messages of a chunk that
 * pass through unchanged cost one write and no copy.
 */
export class SliceRun {
  private buf: Buffer | undefined;
  private start = 0;
  private end = 0;

  constructor(private readonly emit: (slice: Buffer) => void) {}

  add(buf: Buffer, start: number, end: number): void {
    if (this.buf === buf && this.end === start) {
      this.end = end;
      return;
    }
    this.flush();
    this.buf = buf;
    this.start = start;
    this.end = end;
  }

  flush(): void {
    const b = this.buf;
    if (!b) return;
    this.buf = undefined;
    this.emit(this.start === 0 && this.end === b.length ? b : b.subarray(this.start, this.end));
  }
}
