import { SQLSTATE } from './codes';

/**
 * Splits a byte stream into protocol messages (type byte + Int32 length, the length counting itself).
 * No I/O and no copies on the fast path: complete messages are reported as ranges of the chunk they
 * arrived in; only a message split across chunks is assembled in a buffer of its own.
 */
export const MESSAGE_HEADER_BYTES = 5;

export type FramerError =
  | { readonly kind: 'too-large'; readonly code: number; readonly length: number }
  | { readonly kind: 'malformed'; readonly code: number; readonly length: number };

/**
 * The SQLSTATE and message that end a session over a framing problem: a message over the cap is a
 * limit (54000), a length that cannot be is a protocol violation (08P01). `from` names the sender.
 */
export function framerErrorReport(problem: FramerError, maxMessageBytes: number, from: 'client' | 'database'): { readonly sqlState: string; readonly message: string } {
  const bytes = problem.length + 1;
  if (from === 'client') {
    return problem.kind === 'too-large'
      ? { sqlState: SQLSTATE.programLimitExceeded, message: `twokey: message of ${bytes} bytes exceeds the limit of ${maxMessageBytes} bytes` }
      : { sqlState: SQLSTATE.protocolViolation, message: `twokey: invalid message length ${problem.length}` };
  }
  return problem.kind === 'too-large'
    ? { sqlState: SQLSTATE.programLimitExceeded, message: `twokey: the database sent a message of ${bytes} bytes, over the limit of ${maxMessageBytes} bytes` }
    : { sqlState: SQLSTATE.protocolViolation, message: `twokey: the database sent a message with an invalid length ${problem.length}` };
}

/** `buf[start]` is the type byte; the message body is `buf[start + 5 .. end)`. */
export type MessageVisitor = (buf: Buffer, start: number, end: number, code: number) => void;

export class MessageFramer {
  private partial: Buffer | undefined;
  private partialFilled = 0;
  private header = Buffer.alloc(MESSAGE_HEADER_BYTES);
  private headerFilled = 0;

  constructor(readonly maxMessageBytes: number) {}

  /** True while part of a message is buffered. */
  get midMessage(): boolean {
    return this.headerFilled > 0 || this.partial !== undefined;
  }

  /**
   * Reports every complete message in `chunk` (plus any buffered prefix) to `visit`, in order.
   * Returns an error, and stops, at the first message whose declared length is invalid or over the cap.
   */
  push(chunk: Buffer, visit: MessageVisitor): FramerError | undefined {
    let offset = 0;
    const length = chunk.length;
    while (offset < length) {
      if (this.partial) {
        const take = Math.min(this.partial.length - this.partialFilled, length - offset);
        chunk.copy(this.partial, this.partialFilled, offset, offset + take);
        this.partialFilled += take;
        offset += take;
        if (this.partialFilled < this.partial.length) return undefined;
        const whole = this.partial;
        this.partial = undefined;
        this.partialFilled = 0;
        visit(whole, 0, whole.length, whole[0] as number);
        continue;
      }
      if (this.headerFilled > 0 || length - offset < MESSAGE_HEADER_BYTES) {
        const take = Math.min(MESSAGE_HEADER_BYTES - this.headerFilled, length - offset);
        chunk.copy(this.header, this.headerFilled, offset, offset + take);
        this.headerFilled += take;
        offset += take;
        if (this.headerFilled < MESSAGE_HEADER_BYTES) return undefined;
        this.headerFilled = 0;
        const code = this.header[0] as number;
        const declared = this.header.readInt32BE(1);
        const problem = this.check(code, declared);
        if (problem) return problem;
        this.partial = Buffer.allocUnsafe(declared + 1);
        this.header.copy(this.partial, 0);
        this.partialFilled = MESSAGE_HEADER_BYTES;
        if (this.partialFilled === this.partial.length) {
          const whole = this.partial;
          this.partial = undefined;
          this.partialFilled = 0;
          visit(whole, 0, whole.length, code);
        }
        continue;
      }
      const code = chunk[offset] as number;
      const declared = chunk.readInt32BE(offset + 1);
      const problem = this.check(code, declared);
      if (problem) return problem;
      const end = offset + 1 + declared;
      if (end <= length) {
        visit(chunk, offset, end, code);
        offset = end;
        continue;
      }
      this.partial = Buffer.allocUnsafe(declared + 1);
      chunk.copy(this.partial, 0, offset, length);
      this.partialFilled = length - offset;
      offset = length;
    }
    return undefined;
  }

  private check(code: number, declared: number): FramerError | undefined {
    if (declared < 4) return { kind: 'malformed', code, length: declared };
    if (declared + 1 > this.maxMessageBytes) return { kind: 'too-large', code, length: declared };
    return undefined;
  }
}

/** Untyped start-up packets (StartupMessage, SSLRequest, CancelRequest...): Int32 length, then the body. */
export const MAX_STARTUP_PACKET_BYTES = 10_000;

export type StartupPacket = { readonly body: Buffer; readonly rest: Buffer };

/** Takes one start-up packet from the front of `buffered`, or says more bytes are needed. */
export function takeStartupPacket(buffered: Buffer): StartupPacket | 'need-more' | 'invalid' {
  if (buffered.length < 4) return 'need-more';
  const declared = buffered.readInt32BE(0);
  if (declared < 8 || declared > MAX_STARTUP_PACKET_BYTES) return 'invalid';
  if (buffered.length < declared) return 'need-more';
  return { body: buffered.subarray(4, declared), rest: buffered.subarray(declared) };
}
