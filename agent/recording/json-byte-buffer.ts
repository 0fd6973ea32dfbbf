import { isUtf8 } from 'node:buffer';

const QUOTE = 0x22;
const NEWLINE = 0x0a;
/** Per byte: 0 copies as it is, 1 must be escaped in a JSON string (controls, quote, backslash), 2 is non-ASCII. */
const BYTE_CLASS = new Uint8Array(256);
for (let b = 0; b < 0x20; b++) BYTE_CLASS[b] = 1;
BYTE_CLASS[0x22] = 1;
BYTE_CLASS[0x5c] = 1;
for (let b = 0x80; b < 0x100; b++) BYTE_CLASS[b] = 2;
/** An emptied buffer larger than this is given back: each session keeps one, and a large row must not pin its size. */
export const MAX_IDLE_BUFFER_BYTES = 256 * 1024;
/** Digits of the largest safe integer. */
const MAX_INTEGER_DIGITS = 16;
/** Strings up to this length are escaped by a loop here; longer ones go through JSON.stringify. */
const SHORT_STRING = 256;
/**
 * Byte runs up to this length are copied by a loop; longer ones by one native copy. A loop costs about
 * 3 ns a byte here (V8's element stores into a Buffer), a native copy about 50 ns whatever its length.
 */
export const SHORT_COPY = 16;

/**
 * A growable buffer that JSON text is written into as bytes: constant parts copied from prepared
 * buffers, values escaped only when they need it. The recorder's hot events (a statement, a row, a
 * result per transaction) are written this way without creating a string or an object each.
 */
export class JsonByteBuffer {
  bytes: Buffer;
  length = 0;

  constructor(
    private readonly initialBytes: number,
    /** Kept across resets up to this size: what the owner fills between resets, so that it is not grown again each time. */
    private readonly maxIdleBytes: number = MAX_IDLE_BUFFER_BYTES,
  ) {
    this.bytes = Buffer.allocUnsafe(initialBytes);
  }

  /** What was written so far (a view: valid until the next write or reset). */
  view(): Buffer {
    return this.bytes.subarray(0, this.length);
  }

  /** Empties the buffer; one that a burst (a large row) grew past its idle size goes back to its initial size. */
  reset(): void {
    this.length = 0;
    if (this.bytes.length > this.maxIdleBytes) this.bytes = Buffer.allocUnsafe(this.initialBytes);
  }

  /** Forgets what was written after `length` (an event cut short). */
  truncate(length: number): void {
    if (length < this.length) this.length = length;
  }

  private room(extra: number): void {
    const needed = this.length + extra;
    if (needed <= this.bytes.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.bytes.length * 2, needed));
    this.bytes.copy(grown, 0, 0, this.length);
    this.bytes = grown;
  }

  /** Bytes that already are JSON text (keys, punctuation prepared once), copied as they are. */
  raw(src: Buffer): void {
    const n = src.length;
    this.room(n);
    const out = this.bytes;
    let at = this.length;
    if (n > SHORT_COPY) {
      out.set(src, at);
      this.length = at + n;
      return;
    }
    for (let i = 0; i < n; i++) out[at++] = src[i] as number;
    this.length = at;
  }

  /** An ASCII string that needs no escaping (a formatted time, a number's digits). */
  ascii(s: string): void {
    const n = s.length;
    this.room(n);
    const out = this.bytes;
    let at = this.length;
    for (let i = 0; i < n; i++) out[at++] = s.charCodeAt(i);
    this.length = at;
  }

  /** JSON text encoded elsewhere (the rare events), written as UTF-8. */
  json(text: string): void {
    this.room(text.length * 3);
    this.length += this.bytes.write(text, this.length);
  }

  newline(): void {
    this.room(1);
    this.bytes[this.length++] = NEWLINE;
  }

  /** A non-negative integer, in decimal; anything else through JSON (so NaN is `null`, as JSON has it). */
  uint(n: number): void {
    if (!(Number.isSafeInteger(n) && n >= 0)) return this.ascii(JSON.stringify(n));
    this.room(MAX_INTEGER_DIGITS);
    const out = this.bytes;
    const start = this.length;
    let at = start;
    do {
      out[at++] = 0x30 + (n % 10);
      n = Math.floor(n / 10);
    } while (n > 0);
    // Digits came out last first.
    for (let i = start, j = at - 1; i < j; i++, j--) {
      const t = out[i] as number;
      out[i] = out[j] as number;
      out[j] = t;
    }
    this.length = at;
  }

  /** A non-negative integer below 10^width, in decimal, zero-padded to `width` digits. */
  paddedUint(n: number, width: number): void {
    this.room(width);
    const out = this.bytes;
    for (let i = this.length + width - 1; i >= this.length; i--) {
      out[i] = 0x30 + (n % 10);
      n = Math.floor(n / 10);
    }
    this.length += width;
  }

  /** A string value, quoted: plain ASCII is copied, anything else goes through JSON.stringify. */
  string(s: string): void {
    const n = s.length;
    if (n <= SHORT_STRING) {
      this.room(n + 2);
      const out = this.bytes;
      let at = this.length;
      out[at++] = QUOTE;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80 || BYTE_CLASS[c] !== 0) break;
        out[at++] = c;
      }
      if (i === n) {
        out[at++] = QUOTE;
        this.length = at;
        return;
      }
    }
    this.json(JSON.stringify(s));
  }

  /**
   * `src[start..end)` as a string value: bytes that are valid UTF-8 and need no escaping are copied;
   * others are decoded (invalid sequences become U+FFFD, as Buffer#toString has it) and escaped.
   */
  utf8(src: Buffer, start: number, end: number): void {
    let kinds = 0;
    for (let i = start; i < end; i++) kinds |= BYTE_CLASS[src[i] as number] as number;
    if ((kinds & 1) === 0 && (kinds === 0 || isUtf8(src.subarray(start, end)))) {
      const n = end - start;
      this.room(n + 2);
      const out = this.bytes;
      out[this.length++] = QUOTE;
      if (n > SHORT_COPY) src.copy(out, this.length, start, end);
      else for (let i = start, at = this.length; i < end; i++) out[at++] = src[i] as number;
      this.length += n;
      out[this.length++] = QUOTE;
      return;
    }
    this.json(JSON.stringify(src.toString('utf8', start, end)));
  }
}

/** A constant piece of JSON text, prepared once. */
export const jsonText = (text: string): Buffer => Buffer.from(text, 'utf8');
