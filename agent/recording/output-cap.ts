/** A terminal's output recorded at most, per SSH channel or `kubectl exec`/`attach` (the caller still gets all of it). */
export const MAX_RECORDED_OUTPUT_BYTES = 1024 * 1024;

/**
 * A terminal's output on its way to the recording, cut at `max` bytes exactly (a character split there
 * shows as U+FFFD): a 100 MB `cat` is not kept a second time. `finish` notes what was left out.
 */
export class RecordedOutputCap {
  private seen = 0;

  constructor(
    private readonly sink: { output(text: string): void; note(text: string): void },
    private readonly max = MAX_RECORDED_OUTPUT_BYTES,
  ) {}

  add(data: Buffer | string): void {
    const length = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    const room = this.max - this.seen;
    this.seen += length;
    if (room <= 0) return;
    if (length <= room) this.sink.output(typeof data === 'string' ? data : data.toString('utf8'));
    else this.sink.output((typeof data === 'string' ? Buffer.from(data) : data).subarray(0, room).toString('utf8'));
  }

  finish(): void {
    if (this.seen > this.max) this.sink.note(`${this.seen - this.max} more bytes of output not recorded`);
  }
}
