import type { ContentScanner } from './scanner';

/** Longest text a match may span across chunk boundaries (a 4096-bit RSA key in PEM is about 3.3 KB). */
export const STREAM_LOOK_BEHIND_CHARS = 8192;

/**
 * Text a push waits to gather beyond the look-behind before it scans and emits: each character is then
 * searched about twice rather than once per small chunk (a 55-byte log line rescanned 8 KB).
 */
export const STREAM_EMIT_BATCH_CHARS = STREAM_LOOK_BEHIND_CHARS;

/**
 * Longest a value still open at the end of what arrived (a PEM block without its END line) is held
 * back. Past it, what arrived is masked with the value running to its end, and the rest of the value
 * is masked as a value of its own, from its first line again, until it ends: memory and rescans stay
 * bounded, and nothing of the block passes unmasked.
 */
export const MAX_OPEN_VALUE_CHARS = 64 * 1024;

/**
 * Masks a text stream (terminal output, a pod's log) whose chunks split values anywhere. Text is
 * scanned in batches that end at a line end: a value does not continue past one (except a PEM block,
 * which is held back whole while it is open, up to MAX_OPEN_VALUE_CHARS), so each line is scanned once and masked exactly as in
 * the whole text. A line longer than `STREAM_LOOK_BEHIND_CHARS` is cut there instead, never inside a
 * value the scanner recognizes. `flush` releases what is held (the caller flushes when the stream goes
 * idle or ends, trading the last partial value's protection for latency, which a terminal needs).
 */
export class StreamMasker {
  private carry = '';

  constructor(
    private readonly scanner: ContentScanner,
    private readonly lookBehindChars = STREAM_LOOK_BEHIND_CHARS,
    private readonly emitBatchChars = Math.min(STREAM_EMIT_BATCH_CHARS, lookBehindChars),
  ) {}

  /** Masked text that is safe to emit now. */
  push(chunk: string): string {
    const text = this.carry + chunk;
    if (text.length <= this.lookBehindChars + this.emitBatchChars) {
      this.carry = text;
      return '';
    }
    const lineEnd = text.lastIndexOf('\n') + 1;
    const atLineEnd = lineEnd > 0 && text.length - lineEnd <= this.lookBehindChars;
    let cut = atLineEnd ? lineEnd : text.length - this.lookBehindChars;
    let open: number | undefined;
    // Never cut inside a value the scanner recognizes, nor after the start of one that runs to the end
    // of the text (it may go on): it is kept whole for the next round.
    for (const [from, to] of this.scanner.matchRanges(text, atLineEnd)) {
      if (from >= cut) continue;
      if (to >= text.length) open = Math.min(open ?? from, from);
      if (to > cut || to >= text.length) cut = Math.min(cut, from);
    }
    if (open !== undefined && text.length - open > MAX_OPEN_VALUE_CHARS) {
      const firstLineEnd = text.indexOf('\n', open);
      this.carry = firstLineEnd < 0 ? '' : text.slice(open, firstLineEnd + 1);
      return this.scanner.scanString(text);
    }
    this.carry = text.slice(cut);
    return this.scanner.scanString(text.slice(0, cut));
  }

  flush(): string {
    const out = this.scanner.scanString(this.carry);
    this.carry = '';
    return out;
  }
}
