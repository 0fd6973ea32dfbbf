import type { CycleEndEvent, StatementEvent } from '../postgres/events';
import { MESSAGE_HEADER_BYTES } from '../postgres/protocol/framer';
import { JsonByteBuffer, jsonText } from './json-byte-buffer';
import type { PendingEvents } from './pending-events';

// The hot events' constant parts, as bytes. The event shapes are those of the NDJSON format:
// {"t":…,"e":"statement","text":…,"protocol":…,"class":…,"decision":…,"rule":…,"reason":…}
// {"e":"row","v":[…]}
// {"t":…,"e":"result","tags":[…],"rows":…,"rowsNotRecorded":…,"durationMs":…,"errors":[…]}
// (rowsNotRecorded only when rows went beyond the cap, errors only when there were any).
// A statement's rows and result are folded into its line while nothing else comes between:
// {"t":…,"e":"statement","text":…,…,"v":[[…],…],"result":{"tags":[…],"rows":…,"durationMs":…}}
// (v only when rows were recorded; result fields as in the result event, without t). That is most of
// what a busy session does: a transaction of pgbench -S is one such line instead of three. Anything
// between them (a notice, another statement, a spool flush) ends the line as it stands, and the rest
// follows as separate events; so does a result's row after the first FOLDED_ROWS_MAX.
const OPEN_TIME = jsonText('{"t":"');
// A hot line's time is written without its closing `Z`: the constant after it begins with one (one copy fewer per line).
const STATEMENT_TEXT = jsonText('Z","e":"statement","text":');
const ROW_OPEN = jsonText('{"e":"row","v":[');
const ROW_CLOSE = jsonText(']}');
const COMMA = jsonText(',');
const NULL = jsonText('null');
const RESULT_TAGS = jsonText('Z","e":"result","tags":[');
const RESULT_ROWS = jsonText('],"rows":');
const RESULT_NOT_RECORDED = jsonText(',"rowsNotRecorded":');
const RESULT_DURATION = jsonText(',"durationMs":');
const RESULT_ERRORS = jsonText(',"errors":');
const CLOSE = jsonText('}');
const FOLDED_ROWS_OPEN = jsonText(',"v":[[');
const FOLDED_ROWS_NEXT = jsonText('],[');
const FOLDED_ROWS_END = jsonText(']]');
const FOLDED_ROWS_CLOSE = jsonText(']]}');
const FOLDED_RESULT_TAGS = jsonText(',"result":{"tags":[');
const FOLDED_RESULT_CLOSE = jsonText('}}');
/** A kept result part's usual size at most (tags, rows, the duration's key); the scratch grows past it if need be. */
const RESULT_SCRATCH_BYTES = 256;
/** Where the kept part of a folded result's end is put together (one at a time: the worker has one thread). */
const resultScratch = new JsonByteBuffer(RESULT_SCRATCH_BYTES);
/** A statement's text up to this size is kept in its session's buffer; a longer one in a buffer of its own. */
const TEXT_SCRATCH_BYTES = 1024;
/** Where a repeated statement's body is put together (see `statementAgain`). */
const bodyScratch = new JsonByteBuffer(TEXT_SCRATCH_BYTES);
const EMPTY = Buffer.alloc(0);

/** A statement event's fields after its text. */
export type StatementTail = Omit<StatementEvent, 'text'>;

/** `,"protocol":…` to the tail's last field (rule and reason only when set, as JSON.stringify leaves undefined out). */
const tailBytes = (t: StatementTail): Buffer =>
  intern(jsonText(`,${JSON.stringify({ protocol: t.protocol, class: t.class, decision: t.decision, rule: t.rule, reason: t.reason }).slice(1, -1)}`));
/** Rows folded into their statement's line; a larger result is written as row events. */
export const FOLDED_ROWS_MAX = 8;

/** `{"t":"YYYY-MM-DDTHH:MM:SS.` is the same for a second's events; toISOString costs about 1 µs a call. */
const ISO_TO_SECOND_LENGTH = 'YYYY-MM-DDTHH:MM:SS.'.length;
const ISO_LENGTH = 24;
const MS_PER_SECOND = 1000;
const MS_DIGITS = 3;
let secondStartMs = 0;
let openAndSecond: Buffer | undefined;
/**
 * Opens a hot event's line: `{"t":"` and the time as ISO 8601 up to its milliseconds, without the
 * closing `Z` (the caller's next constant begins with it). The part up to the second is built once a
 * second, the milliseconds written as digits.
 */
function openLineWithTime(out: JsonByteBuffer, ms: number): void {
  const inSecond = ms - secondStartMs;
  if (inSecond >= 0 && inSecond < MS_PER_SECOND && openAndSecond) {
    out.raw(openAndSecond);
    return out.paddedUint(inSecond, MS_DIGITS);
  }
  secondStartMs = ms - (ms % MS_PER_SECOND);
  const iso = new Date(ms).toISOString();
  // Years past 9999 have a longer form: those are written whole.
  openAndSecond = iso.length === ISO_LENGTH ? Buffer.concat([OPEN_TIME, jsonText(iso.slice(0, ISO_TO_SECOND_LENGTH))]) : undefined;
  out.raw(OPEN_TIME);
  out.ascii(iso.slice(0, -1));
}

/**
 * One Postgres session's recording, as newline-delimited JSON lines: statements (text, class,
 * decision), rows as sent to the caller up to a cap per statement (then the count beyond it), results;
 * the rare events (start, errors and notices, approvals, end) come encoded. This runs on the recorder's
 * worker thread, fed from the proxy's thread through a ring (see pg-recorder.ts), each hot event with
 * the time it happened.
 *
 * The per-transaction events (statement, row, result) are written straight into the line buffer byte
 * by byte: no string, object or closure per event (see JsonByteBuffer).
 */
export class PgNdjsonWriter {
  /** The statement event's tail after its text (`,"protocol":…` to its last field), as the worker last read it. */
  private tail: Buffer = EMPTY;
  /** The current statement's text as UTF-8: a copy, for a repeat of it (see `statementAgain`). */
  private text = Buffer.allocUnsafe(TEXT_SCRATCH_BYTES);
  private readonly textScratch = this.text;
  private textLength = -1;
  /** The current statement's body (`","e":"statement","text":…` to its last field) once it was executed again. */
  private againBody: Buffer | undefined;
  /** Statements written since the last result: only the only one can have its result folded in. */
  private statementsSinceResult = 0;
  /** The sink holds this session's statement line open for its rows and result (see `holdLine`). */
  private folding = false;
  private foldedRows = 0;
  /** The last folded result's end up to its duration, as bytes (see `writeFoldedResultLikeLast`). */
  private lastResult = { tag: '', rows: -1, withRows: false, head: CLOSE };

  constructor(
    private readonly pending: PendingEvents,
    private readonly cap: number,
  ) {}

  /**
   * A statement whose text is `src[start..end)` (UTF-8, as the ring has it: written as it is when it
   * needs no escaping); `tail` when its fields after the text differ from the statement's before.
   */
  statement(src: Buffer, start: number, end: number, tail: StatementTail | undefined, ms: number): void {
    if (tail) this.tail = tailBytes(tail);
    this.keepText(src, start, end);
    const out = this.openStatementLine(ms);
    if (!out) return;
    out.raw(STATEMENT_TEXT);
    out.utf8(src, start, end);
    out.raw(this.tail);
    this.holdStatementLine(out);
  }

  /**
   * The current statement again (a prepared statement's execution): its body is encoded once, at its
   * first repeat, and then copied.
   */
  statementAgain(ms: number): void {
    if (this.textLength < 0) return;
    const body = (this.againBody ??= this.encodeAgainBody());
    const out = this.openStatementLine(ms);
    if (!out) return;
    out.raw(body);
    this.holdStatementLine(out);
  }

  /** A row as sent to the caller: the proxy's thread sends a statement's rows up to the cap only (see pg-recorder.ts). */
  dataRow(buf: Buffer, start: number, end: number): void {
    this.writeRow(buf, start, end);
  }

  cycleEnd(e: CycleEndEvent): void {
    this.writeResult(e);
  }

  /** A rare event's whole line (JSON text with its time). */
  line(json: string): void {
    this.folding = false;
    this.pending.appendJson(json);
  }

  private keepText(src: Buffer, start: number, end: number): void {
    const n = end - start;
    this.text = n > this.textScratch.length ? Buffer.allocUnsafe(n) : this.textScratch;
    src.copy(this.text, 0, start, end);
    this.textLength = n;
    this.againBody = undefined;
  }

  private encodeAgainBody(): Buffer {
    const body = bodyScratch;
    body.reset();
    body.raw(STATEMENT_TEXT);
    body.utf8(this.text, 0, this.textLength);
    body.raw(this.tail);
    return intern(Buffer.from(body.view()));
  }

  private openStatementLine(ms: number): JsonByteBuffer | undefined {
    const out = this.pending.beginLine();
    this.folding = false;
    if (out) openLineWithTime(out, ms);
    return out;
  }

  /** Ends a statement's line, or holds it open for its rows and result. */
  private holdStatementLine(out: JsonByteBuffer): void {
    // A second statement before a result (a pipeline, a batch): its rows and result are not its own.
    if (this.statementsSinceResult++ > 0) {
      out.raw(CLOSE);
      this.pending.endLine();
      return;
    }
    this.folding = true;
    this.foldedRows = 0;
    this.pending.holdLine(CLOSE);
  }

  private writeRow(buf: Buffer, start: number, end: number): void {
    if (this.folding && this.foldedRows < FOLDED_ROWS_MAX) {
      const line = this.pending.resumeLine();
      if (line) {
        line.raw(this.foldedRows++ === 0 ? FOLDED_ROWS_OPEN : FOLDED_ROWS_NEXT);
        writeRowValues(line, buf, start, end);
        this.pending.holdLine(FOLDED_ROWS_CLOSE);
        return;
      }
    }
    this.folding = false;
    const out = this.pending.beginLine();
    if (!out) return;
    out.raw(ROW_OPEN);
    writeRowValues(out, buf, start, end);
    out.raw(ROW_CLOSE);
    this.pending.endLine();
  }

  private writeResult(e: CycleEndEvent): void {
    this.statementsSinceResult = 0;
    const folded = this.folding ? this.pending.resumeLine() : undefined;
    this.folding = false;
    if (folded) {
      if (!this.writeFoldedResultLikeLast(folded, e)) {
        this.openFoldedResult(folded, this.foldedRows > 0);
        this.writeResultFields(folded, e);
        folded.raw(FOLDED_RESULT_CLOSE);
      }
      this.pending.endLine();
      return;
    }
    const out = this.pending.beginLine();
    if (!out) return;
    openLineWithTime(out, e.endedAt);
    out.raw(RESULT_TAGS);
    this.writeResultFields(out, e);
    out.raw(CLOSE);
    this.pending.endLine();
  }

  /**
   * A folded line's end for a result like the last one (one tag, no errors, rows within the cap): a
   * session's transactions mostly end alike, so the part up to the duration is kept as bytes and copied
   * (one copy for a dozen writes), and the duration, which differs from one transaction to the next
   * under load, is written as digits after it. False for any other result (written field by field).
   */
  private writeFoldedResultLikeLast(out: JsonByteBuffer, e: CycleEndEvent): boolean {
    const tags = e.commandTags;
    if (tags.length !== 1 || e.errors.length > 0 || e.rowsSent > this.cap) return false;
    const withRows = this.foldedRows > 0;
    let last = this.lastResult;
    if (last.tag !== tags[0] || last.rows !== e.rowsSent || last.withRows !== withRows) {
      const head = resultScratch;
      head.reset();
      this.openFoldedResult(head, withRows);
      this.writeResultUpToDuration(head, e);
      last = this.lastResult = { tag: tags[0] as string, rows: e.rowsSent, withRows, head: intern(Buffer.from(head.view())) };
    }
    out.raw(last.head);
    out.uint(e.durationMs);
    out.raw(FOLDED_RESULT_CLOSE);
    return true;
  }

  /** Closes the folded rows (if any) and opens the line's result, up to its tags' items. */
  private openFoldedResult(out: JsonByteBuffer, withRows: boolean): void {
    if (withRows) out.raw(FOLDED_ROWS_END);
    out.raw(FOLDED_RESULT_TAGS);
  }

  /** From the tags' items to the last field, without the closing brace. */
  private writeResultFields(out: JsonByteBuffer, e: CycleEndEvent): void {
    this.writeResultUpToDuration(out, e);
    out.uint(e.durationMs);
    if (e.errors.length > 0) {
      out.raw(RESULT_ERRORS);
      out.json(JSON.stringify(e.errors));
    }
  }

  /** From the tags' items to the duration's key (`,"durationMs":`), the part that repeats from one transaction to the next. */
  private writeResultUpToDuration(out: JsonByteBuffer, e: CycleEndEvent): void {
    const tags = e.commandTags;
    for (let i = 0; i < tags.length; i++) {
      if (i > 0) out.raw(COMMA);
      out.string(tags[i] as string);
    }
    out.raw(RESULT_ROWS);
    out.uint(e.rowsSent);
    // Defaults are left out (no rows beyond the cap, no errors): every transaction writes these fields.
    if (e.rowsSent > this.cap) {
      out.raw(RESULT_NOT_RECORDED);
      out.uint(e.rowsSent - this.cap);
    }
    out.raw(RESULT_DURATION);
  }
}

/**
 * The statement and result bytes that sessions keep for their repeats, one copy for every session
 * that has the same: pgbench's eight sessions (or a pool's) repeat the same statements and results,
 * and one copy stays in the CPU's caches where eight would each be fetched from memory at each use
 * (on a busy machine, such fetches are most of what a recorded transaction costs). Bounded: entries
 * up to INTERNED_MAX_BYTES each, INTERNED_MAX_ENTRIES in all (then it starts again). `bytes` must be
 * the caller's own (never written to afterwards): it is what gets kept.
 */
const interned = new Map<string, Buffer>();
const INTERNED_MAX_ENTRIES = 1024;
const INTERNED_MAX_BYTES = 1024;
function intern(bytes: Buffer): Buffer {
  if (bytes.length > INTERNED_MAX_BYTES) return bytes;
  const key = bytes.toString('latin1');
  const found = interned.get(key);
  if (found) return found;
  if (interned.size >= INTERNED_MAX_ENTRIES) interned.clear();
  interned.set(key, bytes);
  return bytes;
}

/** A DataRow's values (`buf[start..end)`, header included) as JSON array items: strings or null. */
function writeRowValues(out: JsonByteBuffer, buf: Buffer, start: number, end: number): void {
  if (end - start < MESSAGE_HEADER_BYTES + 2) return;
  let at = start + MESSAGE_HEADER_BYTES;
  const count = buf.readInt16BE(at);
  at += 2;
  for (let i = 0; i < count && at + 4 <= end; i++) {
    const len = buf.readInt32BE(at);
    at += 4;
    if (i > 0) out.raw(COMMA);
    if (len < 0) out.raw(NULL);
    else {
      const valueEnd = Math.min(end, at + len);
      out.utf8(buf, at, valueEnd);
      at = valueEnd;
    }
  }
}
