import { StringDecoder } from 'node:string_decoder';

/** A terminal's output recorded at most, per SSH channel or `kubectl exec`/`attach` (the caller still gets all of it). */
export const MAX_RECORDED_OUTPUT_BYTES = 1024 * 1024;
/** The caller's input into one terminal recorded at most, when the policy records input. */
export const MAX_RECORDED_INPUT_BYTES = 1024 * 1024;

/**
 * One direction of a terminal on its way to the recording, up to a cap: a 100 MB `cat` is not kept a
 * second time. Bytes are decoded as UTF-8 across chunks (a character split between packets is kept
 * whole) and cut at the cap exactly (one split there shows as U+FFFD); `finish` notes what was left out.
 */
export class RecordedCap {
  private readonly decoder = new StringDecoder('utf8');
  private seen = 0;

  constructor(
    private readonly record: (text: string) => void,
    private readonly note: (text: string) => void,
    private readonly what: 'output' | 'input' = 'output',
  ) {}

  private get max(): number {
    return this.what === 'input' ? MAX_RECORDED_INPUT_BYTES : MAX_RECORDED_OUTPUT_BYTES;
  }

  add(data: Buffer | string): void {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    const room = this.max - this.seen;
    this.seen += bytes.length;
    if (room <= 0) return;
    const text = bytes.length <= room ? this.decoder.write(bytes) : this.decoder.write(bytes.subarray(0, room)) + this.decoder.end();
    if (text) this.record(text);
  }

  finish(): void {
    if (this.seen > this.max) this.note(`${this.seen - this.max} more bytes of ${this.what} not recorded`);
  }
}
