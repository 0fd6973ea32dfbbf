import { JsonByteBuffer } from './json-byte-buffer';

const INITIAL_PENDING_BYTES = 16 * 1024;

/**
 * Events waiting to be compressed, as whole JSON lines in one buffer: the line API a recorder writes
 * through (in place, byte by byte, for the hot Postgres events). A spool flushes what `whole()` returns
 * and then `clear()`s it; `lineEnded` tells it how much is waiting (to flush early, or to schedule a
 * flush), `held` that a line is waiting open.
 */
export class PendingEvents {
  /** Events not yet compressed: bytes, not strings (thousands of live strings a second would wake the old-generation collector). */
  private readonly pending: JsonByteBuffer;
  /** Where the line being written began (-1: none open). */
  private lineStart = -1;
  /**
   * Set while the line being written is held open (see `holdLine`): the bytes that end it as a whole
   * event if anything else has to be written first.
   */
  private heldClose: Buffer | undefined;

  constructor(
    /** A busy session's buffer is kept between flushes up to this size, so that it is not grown again each time. */
    idleBytes: number,
    private readonly lineEnded: (waiting: number) => void,
    private readonly held: () => void,
  ) {
    this.pending = new JsonByteBuffer(INITIAL_PENDING_BYTES, idleBytes);
  }

  /** Bytes waiting (whole lines, and any line being written). */
  get length(): number {
    return this.pending.length;
  }

  /** One JSON line of text the caller encoded itself. */
  appendJson(json: string): void {
    this.beginLine().json(json);
    this.endLine();
  }

  /**
   * The buffer one event is written into, in place; then `endLine()`. A line left unfinished (its
   * writer failed) is dropped, so that half an event never reaches the file.
   */
  beginLine(): JsonByteBuffer {
    this.closeHeldLine();
    this.dropUnfinishedLine();
    this.lineStart = this.pending.length;
    return this.pending;
  }

  /**
   * Leaves the line being written open, to be continued by `resumeLine()`: a statement's line, which its
   * rows and result are folded into when nothing else comes between. `close` is what makes the line
   * a whole event as it stands; it is written when any other line begins, or before a flush.
   */
  holdLine(close: Buffer): void {
    if (this.lineStart < 0) return;
    this.heldClose = close;
    this.held();
  }

  /** The line held open, to write more of it (then `endLine()` or `holdLine()` again); undefined once it was closed. */
  resumeLine(): JsonByteBuffer | undefined {
    if (this.heldClose === undefined) return undefined;
    this.heldClose = undefined;
    return this.pending;
  }

  endLine(): void {
    if (this.lineStart < 0) return;
    this.heldClose = undefined;
    this.lineStart = -1;
    this.pending.newline();
    this.lineEnded(this.pending.length);
  }

  /** The whole lines waiting (a held line closed as it stands, an unfinished one dropped); empty when none. A view: valid until the next write or `clear()`. */
  whole(): Buffer {
    this.closeHeldLine();
    this.dropUnfinishedLine();
    return this.pending.view();
  }

  /** Forgets every line (flushed, or dropped when it cannot be). */
  clear(): void {
    this.pending.reset();
    this.heldClose = undefined;
    this.lineStart = -1;
  }

  private closeHeldLine(): void {
    const close = this.heldClose;
    if (close === undefined) return;
    this.heldClose = undefined;
    this.pending.raw(close);
    this.pending.newline();
    this.lineStart = -1;
  }

  private dropUnfinishedLine(): void {
    if (this.lineStart >= 0) this.pending.truncate(this.lineStart);
    this.lineStart = -1;
  }
}
