import { MESSAGE_HEADER_BYTES } from './framer';

/**
 * Reads fields out of one message body. Every read is bounds-checked: a truncated or lying message
 * throws ProtocolReadError, which the session turns into a protocol-violation ErrorResponse.
 */
export class ProtocolReadError extends Error {
  override name = 'ProtocolReadError';
}

/** Longest string a RecentCstring remembers (statement names and command tags are short). */
const RECENT_CSTRING_MAX_BYTES = 64;

/**
 * The last string decoded through it, reused while the bytes repeat: a session sends the same
 * statement name and gets the same command tag (`SELECT 1`) thousands of times a second, and each
 * decoding is a native call and a new string on the proxy's hot path.
 */
export class RecentCstring {
  private readonly bytes = Buffer.alloc(RECENT_CSTRING_MAX_BYTES);
  private length = -1;
  private text = '';

  decode(buf: Buffer, start: number, end: number): string {
    const n = end - start;
    if (n === this.length) {
      let i = 0;
      while (i < n && buf[start + i] === this.bytes[i]) i++;
      if (i === n) return this.text;
    }
    const text = buf.toString('utf8', start, end);
    if (n <= RECENT_CSTRING_MAX_BYTES) {
      buf.copy(this.bytes, 0, start, end);
      this.length = n;
      this.text = text;
    }
    return text;
  }
}

export class BodyReader {
  private offset: number;

  constructor(
    private readonly buf: Buffer,
    start: number,
    private readonly end: number,
  ) {
    this.offset = start;
  }

  get remaining(): number {
    return this.end - this.offset;
  }

  int16(): number {
    if (this.offset + 2 > this.end) throw new ProtocolReadError('message truncated (int16)');
    const v = this.buf.readInt16BE(this.offset);
    this.offset += 2;
    return v;
  }

  int32(): number {
    if (this.offset + 4 > this.end) throw new ProtocolReadError('message truncated (int32)');
    const v = this.buf.readInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  byte(): number {
    if (this.offset + 1 > this.end) throw new ProtocolReadError('message truncated (byte)');
    return this.buf[this.offset++] as number;
  }

  cstring(recent?: RecentCstring): string {
    const nul = this.terminator();
    const s = recent ? recent.decode(this.buf, this.offset, nul) : this.buf.toString('utf8', this.offset, nul);
    this.offset = nul + 1;
    return s;
  }

  /** Steps over a string whose value is not needed (no decoding). */
  skipCstring(): void {
    this.offset = this.terminator() + 1;
  }

  /** Where the string at the offset ends (its NUL), within the message. */
  private terminator(): number {
    const nul = this.buf.indexOf(0, this.offset);
    if (nul < 0 || nul >= this.end) throw new ProtocolReadError('unterminated string');
    return nul;
  }

  bytes(n: number): Buffer {
    if (n < 0 || this.offset + n > this.end) throw new ProtocolReadError('message truncated (bytes)');
    const b = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return b;
  }

  rest(): Buffer {
    const b = this.buf.subarray(this.offset, this.end);
    this.offset = this.end;
    return b;
  }
}

/** `buf[start..end)` is a whole typed message; the reader starts after its 5-byte header. */
export const bodyOf = (buf: Buffer, start: number, end: number): BodyReader => new BodyReader(buf, start + MESSAGE_HEADER_BYTES, end);

/**
 * Where the string beginning at `from` ends (its NUL) within `buf[..end)`. A loop, not indexOf: the
 * strings read this way on the hot path are a few bytes (statement names, command tags), shorter than
 * what a native call costs.
 */
function cstringEnd(buf: Buffer, from: number, end: number): number {
  for (let i = from; i < end; i++) if (buf[i] === 0) return i;
  throw new ProtocolReadError('unterminated string');
}

/** A Bind's statement name (message `buf[start..end)`, header included), without a reader: read for every execution of a recorded session. */
export function readBindStatementName(buf: Buffer, start: number, end: number, recent: RecentCstring): string {
  // Portal name first: drivers send the unnamed portal (an empty string).
  const nameStart = cstringEnd(buf, start + MESSAGE_HEADER_BYTES, end) + 1;
  return recent.decode(buf, nameStart, cstringEnd(buf, nameStart, end));
}

/** A CommandComplete's tag (its body is that one string), without a reader. */
export function readCommandTag(buf: Buffer, start: number, end: number, recent: RecentCstring): string {
  return recent.decode(buf, start + MESSAGE_HEADER_BYTES, cstringEnd(buf, start + MESSAGE_HEADER_BYTES, end));
}

export interface ParseMessage {
  readonly name: string;
  readonly query: string;
  readonly paramTypes: number[];
}

export function readParse(r: BodyReader): ParseMessage {
  const name = r.cstring();
  const query = r.cstring();
  const count = r.int16();
  const paramTypes: number[] = [];
  for (let i = 0; i < count; i++) paramTypes.push(r.int32());
  return { name, query, paramTypes };
}

export interface BindMessage {
  readonly portal: string;
  readonly statement: string;
  readonly paramFormats: number[];
  readonly params: (Buffer | null)[];
  readonly resultFormats: number[];
}

export function readBind(r: BodyReader): BindMessage {
  const portal = r.cstring();
  const statement = r.cstring();
  const formatCount = r.int16();
  const paramFormats: number[] = [];
  for (let i = 0; i < formatCount; i++) paramFormats.push(r.int16());
  const paramCount = r.int16();
  const params: (Buffer | null)[] = [];
  for (let i = 0; i < paramCount; i++) {
    const len = r.int32();
    params.push(len === -1 ? null : r.bytes(len));
  }
  const resultCount = r.int16();
  const resultFormats: number[] = [];
  for (let i = 0; i < resultCount; i++) resultFormats.push(r.int16());
  return { portal, statement, paramFormats, params, resultFormats };
}

/** Describe and Close: a kind byte ('S' statement, 'P' portal) and a name. */
export function readTarget(r: BodyReader): { kind: 'S' | 'P'; name: string } {
  const kind = String.fromCharCode(r.byte());
  if (kind !== 'S' && kind !== 'P') throw new ProtocolReadError(`invalid describe/close kind ${kind}`);
  return { kind, name: r.cstring() };
}

export function readExecute(r: BodyReader): { portal: string; maxRows: number } {
  return { portal: r.cstring(), maxRows: r.int32() };
}

/** StartupMessage body after the protocol version: name/value pairs ending with an empty name. */
export function readStartupParams(r: BodyReader): Record<string, string> {
  const params: Record<string, string> = {};
  for (let i = 0; i < 64; i++) {
    const key = r.cstring();
    if (key === '') return params;
    params[key] = r.cstring();
  }
  throw new ProtocolReadError('too many start-up parameters');
}

/** One field of an ErrorResponse or NoticeResponse: its one-letter code and where its value lies. */
export interface ErrorFieldRange {
  readonly code: string;
  /** The code byte's offset; the value is `[valueStart, valueEnd)` and a NUL follows it. */
  readonly at: number;
  readonly valueStart: number;
  readonly valueEnd: number;
}

/** The fields of the ErrorResponse/NoticeResponse at `buf[start..end)`, in order; undefined when one is not terminated. */
export function errorFieldRanges(buf: Buffer, start: number, end: number): ErrorFieldRange[] | undefined {
  const fields: ErrorFieldRange[] = [];
  let at = start + MESSAGE_HEADER_BYTES;
  while (at < end && buf[at] !== 0) {
    const nul = buf.indexOf(0, at + 1);
    if (nul < 0 || nul >= end) return undefined;
    fields.push({ code: String.fromCharCode(buf[at] as number), at, valueStart: at + 1, valueEnd: nul });
    at = nul + 1;
  }
  return fields;
}

/** ErrorResponse/NoticeResponse fields by their one-letter codes (a malformed message's, as far as they go). */
export function readErrorFields(buf: Buffer, start: number, end: number): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const f of errorFieldRanges(buf, start, end) ?? []) fields[f.code] = buf.toString('utf8', f.valueStart, f.valueEnd);
  return fields;
}
