import type { CycleEndEvent, StatementEvent } from '../postgres/events';
import type { StatementTail } from './pg-ndjson-writer';
import { RECORD_HEADER_BYTES, U32_BYTES, UINT_BYTES, utf8Max, type RecordReader, type RecordWriter } from './event-ring';


/**
 * The Postgres recorder's records, as the proxy's thread writes them into the ring and the recorder's
 * worker reads them (see event-ring.ts for the framing). Each kind's payload:
 * - START: cap (u32), session id, the session.start line
 * - STATEMENT: time, text, then 1 when protocol, class, decision, rule and reason are those of the
 *   session's statement before (a session mostly repeats them) or 0 and each (rule and reason with a presence byte)
 * - STATEMENT_AGAIN: time (the session's last statement event again: a prepared statement's execution)
 * - ROW: the DataRow message's bytes, to the record's end
 * - RESULT: time, duration, rows sent, tags (count, then each), errors (count, then each)
 * - JSON_EVENT: a rare event, encoded as JSON already (a notice, an error, an approval)
 * - END: the session.end line
 * - LARGE: the id of a record too large for the ring, sent by message (its bytes are a whole record)
 */
export const START = 1;
export const STATEMENT = 2;
export const STATEMENT_AGAIN = 3;
export const ROW = 4;
export const RESULT = 5;
export const JSON_EVENT = 6;
export const END = 7;
export const LARGE = 8;


const optMax = (s: string | undefined): number => 1 + (s === undefined ? 0 : utf8Max(s));

export function statementMax(e: StatementEvent): number {
  return RECORD_HEADER_BYTES + UINT_BYTES + utf8Max(e.text) + 1 + utf8Max(e.protocol) + utf8Max(e.class) + utf8Max(e.decision) + optMax(e.rule) + optMax(e.reason);
}

/** Whether `e` has the same fields after its text as `before`. */
export const sameTail = (e: StatementEvent, before: StatementEvent | undefined): boolean =>
  before !== undefined && e.protocol === before.protocol && e.class === before.class && e.decision === before.decision && e.rule === before.rule && e.reason === before.reason;

/** A statement event; `before` is the session's statement event written before it. */
export function writeStatement(out: RecordWriter, e: StatementEvent, before: StatementEvent | undefined, ms: number): void {
  out.uint(ms);
  out.str(e.text);
  if (sameTail(e, before)) return out.u8(1);
  out.u8(0);
  out.str(e.protocol);
  out.str(e.class);
  out.str(e.decision);
  writeOpt(out, e.rule);
  writeOpt(out, e.reason);
}

/**
 * A STATEMENT record's tail, after its text (read with `r.span()`: bytes, not decoded): the fields
 * when they differ from the statement's before, undefined when the record says they are the same.
 */
export function readStatementTail(r: RecordReader): StatementTail | undefined {
  if (r.u8() === 1) return undefined;
  return {
    protocol: r.str() as StatementEvent['protocol'],
    class: r.str() as StatementEvent['class'],
    decision: r.str() as StatementEvent['decision'],
    rule: readOpt(r),
    reason: readOpt(r),
  };
}

export function resultMax(e: CycleEndEvent): number {
  let n = RECORD_HEADER_BYTES + 3 * UINT_BYTES + 2 * U32_BYTES;
  for (const t of e.commandTags) n += utf8Max(t);
  for (const m of e.errors) n += utf8Max(m);
  return n;
}

export function writeResult(out: RecordWriter, e: CycleEndEvent): void {
  out.uint(e.endedAt);
  // A clock set back during the cycle: no negative duration (the record carries whole numbers from 0).
  out.uint(e.durationMs > 0 ? e.durationMs : 0);
  out.uint(e.rowsSent);
  writeList(out, e.commandTags);
  writeList(out, e.errors);
}

/** Whole RESULT lists (tags and errors) up to this size are kept to be compared with the next. */
const LISTS_KEPT_BYTES = 256;

/**
 * Reads a session's RESULT records into one object (valid until the next read): the
 * tags and errors are decoded again only when their bytes differ from the record before (a session's
 * results mostly repeat them: `SELECT 1`, no error).
 */
export class ResultReader {
  private readonly result = { endedAt: 0, durationMs: 0, rowsSent: 0, commandTags: [] as readonly string[], errors: [] as readonly string[] };
  private readonly lists = Buffer.allocUnsafe(LISTS_KEPT_BYTES);
  private listsLength = -1;

  read(r: RecordReader): CycleEndEvent {
    const e = this.result;
    e.endedAt = r.uint();
    e.durationMs = r.uint();
    e.rowsSent = r.uint();
    const start = r.at;
    const n = r.end - start;
    if (n !== this.listsLength || r.buf.compare(this.lists, 0, n, start, r.end) !== 0) {
      e.commandTags = readList(r);
      e.errors = readList(r);
      this.listsLength = n <= LISTS_KEPT_BYTES ? n : -1;
      if (this.listsLength >= 0) r.buf.copy(this.lists, 0, start, r.end);
    }
    return e;
  }
}

function writeOpt(out: RecordWriter, s: string | undefined): void {
  out.u8(s === undefined ? 0 : 1);
  if (s !== undefined) out.str(s);
}

function readOpt(r: RecordReader): string | undefined {
  return r.u8() === 0 ? undefined : r.str();
}

function writeList(out: RecordWriter, items: readonly string[]): void {
  out.u32(items.length);
  for (const s of items) out.str(s);
}

function readList(r: RecordReader): string[] {
  const n = r.u32();
  const items: string[] = [];
  for (let i = 0; i < n; i++) items.push(r.str());
  return items;
}
