import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { gzipMember } from '../../core/recording/chunk';
import { PendingEvents } from './pending-events';
import { RecordReader, RingReader } from './event-ring';
import { END, LARGE, JSON_EVENT, readStatementTail, RESULT, ResultReader, ROW, START, STATEMENT, STATEMENT_AGAIN } from './pg-event-records';
import { PgNdjsonWriter } from './pg-ndjson-writer';
import { pollDelayMs } from './ring-poll';
import type { FromWorker, ToWorker } from './pg-recorder';
import { PENDING_IDLE_BYTES, SPOOL_FLUSH_BYTES, SPOOL_FLUSH_MS } from './spool';

// The Postgres recorder's worker (see pg-recorder.ts): reads the ring every RING_POLL_MS (ring-poll.ts), writes each
// session's JSON lines, and sends each session's lines as a gzip member within SPOOL_FLUSH_MS (or at
// SPOOL_FLUSH_BYTES, or at the session's end).

/** The lowest priority: the worker takes CPU the proxy, PostgreSQL and the clients leave idle (Linux: per thread). */
const NICENESS = 19;

interface Session {
  readonly sessionId: string;
  readonly pending: PendingEvents;
  readonly writer: PgNdjsonWriter;
  readonly results: ResultReader;
  flushTimer: NodeJS.Timeout | undefined;
}

const port = parentPort;
if (!port) throw new Error('pg-recording-worker runs as a worker thread');
try {
  setPriority(NICENESS);
} catch {
  // Not permitted here: the worker runs at the agent's priority.
}

const ring = new RingReader((workerData as { memory: SharedArrayBuffer }).memory);
const sessions = new Map<number, Session>();
/** Records too large for the ring, by id, until their place in the ring comes. */
const large = new Map<number, Buffer>();

function post(m: FromWorker): void {
  port?.postMessage(m);
}

function flush(s: Session): void {
  clearTimeout(s.flushTimer);
  s.flushTimer = undefined;
  const events = s.pending.whole();
  if (events.length === 0) return;
  const member = gzipMember(events);
  post({ type: 'member', sessionId: s.sessionId, member, eventBytes: events.length });
  s.pending.clear();
}

function begin(slot: number, r: RecordReader): void {
  const cap = r.u32();
  const sessionId = r.str();
  const startLine = r.str();
  const pending = new PendingEvents(
    PENDING_IDLE_BYTES,
    (waiting) => {
      if (waiting >= SPOOL_FLUSH_BYTES) flush(session);
      else scheduleFlush(session);
    },
    () => scheduleFlush(session),
  );
  const session: Session = { sessionId, pending, writer: new PgNdjsonWriter(pending, cap), results: new ResultReader(), flushTimer: undefined };
  sessions.set(slot, session);
  session.writer.line(startLine);
}

function scheduleFlush(s: Session): void {
  s.flushTimer ??= setTimeout(() => flush(s), SPOOL_FLUSH_MS);
}

function handle(kind: number, slot: number, r: RecordReader): boolean {
  if (kind === LARGE) {
    const id = r.u32();
    const record = large.get(id);
    // Its message has not arrived yet: the ring waits here for it.
    if (!record) return false;
    large.delete(id);
    // A whole record, framed as in the ring.
    const inner = new RecordReader(record);
    inner.begin(0);
    const innerKind = inner.u8();
    const innerSlot = inner.u32();
    return handle(innerKind, innerSlot, inner);
  }
  if (kind === START) {
    begin(slot, r);
    return true;
  }
  const s = sessions.get(slot);
  if (!s) return true;
  switch (kind) {
    case STATEMENT: {
      const ms = r.uint();
      const text = r.span();
      const textEnd = r.at;
      s.writer.statement(r.buf, text, textEnd, readStatementTail(r), ms);
      break;
    }
    case STATEMENT_AGAIN:
      s.writer.statementAgain(r.uint());
      break;
    case ROW:
      s.writer.dataRow(r.buf, r.at, r.end);
      break;
    case RESULT:
      s.writer.cycleEnd(s.results.read(r));
      break;
    case JSON_EVENT:
      s.writer.line(r.str());
      break;
    case END:
      s.writer.line(r.str());
      flush(s);
      sessions.delete(slot);
      post({ type: 'ended', slot });
      break;
    default:
      break;
  }
  return true;
}

let pollTimer: NodeJS.Timeout | undefined;
/** Reads since the last one that found records. */
let emptyReads = 0;

function poll(): void {
  pollTimer = undefined;
  emptyReads = ring.read(handle) > 0 ? 0 : emptyReads + 1;
  schedulePoll();
}

function schedulePoll(): void {
  if (pollTimer) return;
  pollTimer = setTimeout(poll, pollDelayMs(emptyReads));
}

port.on('message', (m: ToWorker) => {
  if (m.type !== 'large') return;
  large.set(m.id, Buffer.from(m.record.buffer, m.record.byteOffset, m.record.byteLength));
  // The ring may be waiting for it: read now.
  emptyReads = 0;
  clearTimeout(pollTimer);
  poll();
});
schedulePoll();
