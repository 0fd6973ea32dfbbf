import { appendJoined, MAX_SFTP_PACKET_BYTES, SFTP_TYPE } from './packets';

/** A reply's head as the relay reads it: length (4), type (1), request id (4). */
const REPLY_HEAD_BYTES = 9;
const LENGTH_BYTES = 4;

/**
 * A stretch of the target's reply stream to pass to the caller as it is. `whole` pieces are one reply
 * each, held until complete because the relay asked to read them; `boundary` is how many leading
 * bytes end on a reply boundary (0: none), the place where the agent's own replies may go in.
 */
export interface ReplyPiece {
  readonly bytes: Buffer;
  readonly whole: boolean;
  readonly boundary: number;
}

/** Which replies the relay reads whole before passing them on (a HANDLE for an OPEN it tracks). */
export type WantsReply = (type: number, id: number | undefined) => boolean;

/**
 * The target's SFTP reply stream cut at reply boundaries without being reframed: the bytes pass in the
 * pieces they arrived in (a 32 KiB DATA reply spans two SSH packets; copying it whole would cost a copy
 * and turn each SSH packet into two toward the caller). Only the head of each reply is read, and the
 * few replies the relay wants are held whole. No I/O here.
 */
export class SftpReplyStream {
  /** The start of the next reply, while its head (or all of it, when wanted) has not all arrived. */
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** Frame length of the wanted reply being held, 0 while its head is still being read. */
  private wholeBytes = 0;
  /** Bytes of the current reply still to pass. */
  private passing = 0;

  constructor(private readonly wants: WantsReply) {}

  /** No reply is part-way through: the agent's own replies can go to the caller now. */
  get atBoundary(): boolean {
    return this.passing === 0 && this.heldBytes === 0;
  }

  push(chunk: Buffer): { readonly pieces: ReplyPiece[] } | { readonly invalidLength: number } {
    const pieces: ReplyPiece[] = [];
    let at = 0;
    while (at < chunk.length) {
      if (this.passing > 0) {
        const n = Math.min(this.passing, chunk.length - at);
        this.passing -= n;
        addPiece(pieces, chunk.subarray(at, at + n), false, this.passing === 0);
        at += n;
        continue;
      }
      if (this.wholeBytes > 0) {
        at = this.holdWhole(chunk, at, pieces);
        continue;
      }
      // A reply starts here: read its head (a reply shorter than a head is all head).
      at = this.take(chunk, at, LENGTH_BYTES);
      if (this.heldBytes < LENGTH_BYTES) continue;
      const length = this.peek(LENGTH_BYTES).readUInt32BE(0);
      if (length === 0 || length > MAX_SFTP_PACKET_BYTES) return { invalidLength: length };
      const headBytes = Math.min(REPLY_HEAD_BYTES, LENGTH_BYTES + length);
      at = this.take(chunk, at, headBytes);
      if (this.heldBytes < headBytes) continue;
      const head = this.peek(headBytes);
      const type = head[LENGTH_BYTES] as number;
      const id = type !== SFTP_TYPE.version && headBytes === REPLY_HEAD_BYTES ? head.readUInt32BE(LENGTH_BYTES + 1) : undefined;
      if (this.wants(type, id)) {
        this.wholeBytes = LENGTH_BYTES + length;
        at = this.holdWhole(chunk, at, pieces);
        continue;
      }
      // The head passes as it came (parts of this chunk join the pieces before them).
      this.passing = LENGTH_BYTES + length - headBytes;
      const parts = this.releaseParts();
      parts.forEach((part, i) => addPiece(pieces, part, false, this.passing === 0 && i === parts.length - 1));
    }
    return { pieces };
  }

  /** Holds the wanted reply's bytes; once all are here it becomes a piece of its own. */
  private holdWhole(chunk: Buffer, at: number, pieces: ReplyPiece[]): number {
    const next = this.take(chunk, at, this.wholeBytes);
    if (this.heldBytes === this.wholeBytes) {
      this.wholeBytes = 0;
      addPiece(pieces, this.release(), true, true);
    }
    return next;
  }

  /** Holds bytes of `chunk` from `at` until `heldBytes` reaches `upTo`; returns where it stopped. */
  private take(chunk: Buffer, at: number, upTo: number): number {
    const n = Math.min(upTo - this.heldBytes, chunk.length - at);
    if (n <= 0) return at;
    this.held.push(chunk.subarray(at, at + n));
    this.heldBytes += n;
    return at + n;
  }

  /** The first `n` bytes held, as one buffer (a copy only when they arrived split). */
  private peek(n: number): Buffer {
    const first = this.held[0] as Buffer;
    return first.length >= n ? first : Buffer.concat(this.held, this.heldBytes).subarray(0, n);
  }

  private release(): Buffer {
    const bytes = this.held.length === 1 ? (this.held[0] as Buffer) : Buffer.concat(this.held, this.heldBytes);
    this.held = [];
    this.heldBytes = 0;
    return bytes;
  }

  private releaseParts(): Buffer[] {
    const parts = this.held;
    this.held = [];
    this.heldBytes = 0;
    return parts;
  }
}

/** Adds bytes to the pieces, joined with the last piece when they follow it in memory (one write, not two). */
function addPiece(pieces: ReplyPiece[], bytes: Buffer, whole: boolean, endsReply: boolean): void {
  const last = pieces[pieces.length - 1];
  if (!whole && last && !last.whole) {
    const parts = [last.bytes];
    appendJoined(parts, bytes);
    if (parts.length === 1) {
      const joined = parts[0] as Buffer;
      pieces[pieces.length - 1] = { bytes: joined, whole: false, boundary: endsReply ? joined.length : last.boundary };
      return;
    }
  }
  pieces.push({ bytes, whole, boundary: endsReply ? bytes.length : 0 });
}
