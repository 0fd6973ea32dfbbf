import { execFileSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { gzipMember } from '../../core/recording/chunk';
import { EventLines } from './event-lines';
import { LENGTH_BYTES, RecordReader, RingReader } from './event-ring';
import * as records from './pg-event-records';
import { PgLineWriter } from './pg-lines';
import type { FromWorker, ToWorker } from './pg-recorder';
import { PENDING_IDLE_BYTES, SPOOL_FLUSH_BYTES, SPOOL_FLUSH_MS } from './spool';

/**
 * The Postgres recorder's worker (see pg-recorder.ts): reads the ring every RING_POLL_MS, writes each
 * session's JSON lines, and sends each session's lines as a gzip member within SPOOL_FLUSH_MS (or at
 * SPOOL_FLUSH_BYTES, or at the session's end).
 */
export const RING_POLL_MS = 5;
/** Used for every record: local copies, as an imported binding is a getter chain under tsx (see agent/postgres/session.ts). */
const { END, LARGE, LINE, readStatementTail, RESULT, ResultReader, ROW, START, STATEMENT, STATEMENT_AGAIN } = records;
/** Where SCHED_IDLE cannot be had: the lowest priority (Linux: per thread). */
const NICENESS = 19;
/** How long setting the worker's scheduling class may take (a process run once, when the worker starts). */
const SCHED_SET_TIMEOUT_MS = 2_000;

interface Session {
  readonly sessionId: string;
  readonly lines: EventLines;
  readonly writer: PgLineWriter;
  readonly results: InstanceType<typeof ResultReader>;
  flushTimer: NodeJS.Timeout | undefined;
}

const port = parentPort;
if (!port) throw new Error('pg-recording-worker runs as a worker thread');
runWhenIdle();

/**
 * The worker runs on CPU the proxy, PostgreSQL and the clients leave idle. Linux's SCHED_IDLE class
 * does that exactly: a waking task of the normal class takes the CPU from it at once, and a CPU
 * running only it counts as idle when a waking task's CPU is chosen. At nice 19 (the normal class) the
 * kernel may let it run on to the end of its slice first (EEVDF's run-to-parity: up to a few ms), and a
 * transaction's next step woken on its CPU waits for it. Node has no call for a thread's scheduling class: util-linux's
 * `chrt` sets it on this thread's id. A machine that keeps every CPU busy still gives the worker a share
 * (and when the ring fills, the proxy waits for it, see pg-recorder.ts). Without chrt: nice 19.
 */
function runWhenIdle(): void {
  try {
    setPriority(NICENESS);
  } catch {
    // Not permitted here: the worker runs at the agent's priority.
  }
  try {
    // `<pid>/task/<tid>` of the thread that reads it.
    const tid = readlinkSync('/proc/thread-self').split('/').pop() as string;
    execFileSync('chrt', ['--idle', '--pid', '0', tid], { stdio: 'ignore', timeout: SCHED_SET_TIMEOUT_MS });
  } catch {
    // No chrt, or not Linux: nice 19 stays.
  }
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
  const events = s.lines.whole();
  if (events.length === 0) return;
  const member = gzipMember(events);
  post({ type: 'member', sessionId: s.sessionId, member, eventBytes: events.length });
  s.lines.clear();
}

function begin(slot: number, r: RecordReader): void {
  const cap = r.u32();
  const sessionId = r.str();
  const startLine = r.str();
  const lines = new EventLines(
    PENDING_IDLE_BYTES,
    (waiting) => {
      if (waiting >= SPOOL_FLUSH_BYTES) flush(session);
      else scheduleFlush(session);
    },
    () => scheduleFlush(session),
  );
  const session: Session = { sessionId, lines, writer: new PgLineWriter(lines, cap), results: new ResultReader(), flushTimer: undefined };
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
    const inner = new RecordReader(record);
    inner.at = LENGTH_BYTES;
    inner.end = record.length;
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
    case RESULT: {
      const ms = r.uint();
      s.writer.cycleEnd(s.results.read(r), ms);
      break;
    }
    case LINE:
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

const drain = (): void => ring.read(handle);
port.on('message', (m: ToWorker) => {
  if (m.type === 'large') {
    large.set(m.id, Buffer.from(m.record.buffer, m.record.byteOffset, m.record.byteLength));
    drain();
  }
});
setInterval(drain, RING_POLL_MS);
