import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { CycleEndEvent, PgSessionEvents, PgSessionObserver, ServerMessageEvent, StatementEvent } from '../postgres/events';
import type { RecordingSettings } from '../../core/policy/schema';
import { recordedIdentity, type SessionEvent } from '../sessions/events';
import { LENGTH_BYTES, newRingMemory, RECORD_HEADER_BYTES, RecordWriter, RingWriter, U32_BYTES, UINT_BYTES, utf8Max } from './event-ring';
import { END, LARGE, JSON_EVENT, RESULT, resultMax, ROW, START, STATEMENT, STATEMENT_AGAIN, statementMax, writeResult, writeStatement } from './pg-event-records';
import type { RecordingService } from './recording-service';

export { FOLDED_ROWS_MAX } from './pg-ndjson-writer';

/**
 * Bytes of events the proxy can be ahead of the recorder's worker: at eight pgbench clients the
 * events come at about 1.2 MB a second, and the worker reads them every RING_POLL_MS.
 */
export const RING_BYTES = 8 * 1024 * 1024;
/**
 * A full ring makes the proxy wait for the worker (backpressure, as a slow disk would) up to this
 * long; then the event is dropped and the session marked incomplete.
 */
export const RING_FULL_WAIT_MS = 5_000;
const WORKER_BOOT = join(__dirname, 'pg-recording-worker.cjs');


/** ISO time for the rare events. */
const isoNow = (): string => new Date().toISOString();

/** From the worker: a gzip member of a session's lines, or that a session's last lines were written. To it: a record too large for the ring. */
export type FromWorker = { type: 'member'; sessionId: string; member: Uint8Array; eventBytes: number } | { type: 'ended'; slot: number };
export type ToWorker = { type: 'large'; id: number; record: Uint8Array };

/**
 * Postgres recording in two halves. On the proxy's thread, each session's events are appended to a
 * ring in shared memory as plain stores; the session hands them over after its socket writes
 * (agent/postgres/deferred-observer.ts). A worker thread at the lowest priority reads them, writes the
 * JSON lines (pg-ndjson-writer.ts), compresses them and hands each gzip member back to the session's spool
 * here, which appends it to the open chunk: the encoding and gzip run on idle CPU instead of on every
 * transaction's path (costs: `npm run bench:recording`, bench/RESULTS.md). Events reach the spool file
 * within SPOOL_FLUSH_MS plus the worker's poll; a crash loses what was in between (the session is then
 * marked incomplete).
 */
class PgRecordingPipe {
  /** The worker and the ring it reads; both made again if the worker stops (its sessions are then ended incomplete). */
  private current: { worker: Worker; ring: RingWriter } | undefined;
  private nextSlot = 1;
  private nextLarge = 1;
  /** Live sessions by slot: what ends them when the worker says so, or when it is lost. */
  private readonly sessions = new Map<number, { sessionId: string; ended: () => void }>();
  /** Set by `stop()`: the spools were abandoned as a crash would leave them, and nothing more is written. */
  private stopped = false;

  constructor(
    private readonly service: RecordingService,
    private readonly onError: (e: unknown) => void,
  ) {}

  begin(sessionId: string, cap: number, startLine: string, ended: () => void): number {
    const slot = this.nextSlot++;
    this.sessions.set(slot, { sessionId, ended });
    const out = this.open(START, slot, RECORD_HEADER_BYTES + U32_BYTES + utf8Max(sessionId) + utf8Max(startLine));
    if (out) {
      out.u32(cap);
      out.str(sessionId);
      out.str(startLine);
      this.close(out);
    }
    return slot;
  }

  /**
   * Opens a record: the ring's writer, or (for a record larger than the ring takes) a buffer of its
   * own, sent by message behind a LARGE record so that it keeps its place. Undefined when the ring
   * stayed full: the event is lost, and its session marked incomplete.
   */
  open(kind: number, slot: number, max: number): RecordWriter | undefined {
    const { ring } = this.current ?? this.start();
    if (max > ring.maxRecord) {
      const out = new RecordWriter(Buffer.allocUnsafe(max));
      out.at = LENGTH_BYTES;
      out.u8(kind);
      out.u32(slot);
      return out;
    }
    if (ring.open(kind, slot, max, RING_FULL_WAIT_MS)) return ring.out;
    this.lostEvent(slot);
    return undefined;
  }

  close(out: RecordWriter): void {
    const current = this.current;
    if (!current) return;
    if (out === current.ring.out) return current.ring.close();
    const end = out.at;
    out.at = 0;
    out.u32(end);
    const slot = out.buf.readUInt32LE(LENGTH_BYTES + 1);
    if (!current.ring.open(LARGE, slot, RECORD_HEADER_BYTES + U32_BYTES, RING_FULL_WAIT_MS)) return this.lostEvent(slot);
    const id = this.nextLarge++;
    const message: ToWorker = { type: 'large', id, record: out.buf.subarray(0, end) };
    current.worker.postMessage(message);
    current.ring.out.u32(id);
    current.ring.close();
  }

  /** A session's last event: it ends once the worker has written it, or at once when it cannot be sent. */
  end(slot: number, json: string): void {
    const out = this.open(END, slot, RECORD_HEADER_BYTES + utf8Max(json));
    if (!out) return this.ended(slot);
    out.str(json);
    this.close(out);
  }

  stop(): Promise<number> | undefined {
    this.stopped = true;
    return this.current?.worker.terminate();
  }

  private lostEvent(slot: number): void {
    const session = this.sessions.get(slot);
    if (session) this.service.markLost(session.sessionId);
  }

  private ended(slot: number): void {
    const session = this.sessions.get(slot);
    this.sessions.delete(slot);
    session?.ended();
  }

  private start(): { worker: Worker; ring: RingWriter } {
    const memory = newRingMemory(RING_BYTES);
    const worker = new Worker(WORKER_BOOT, { workerData: { memory } });
    worker.unref();
    worker.on('message', (m: FromWorker) => this.onMessage(m));
    worker.on('error', (e) => this.onError(e));
    worker.on('exit', () => this.lost(worker));
    this.current = { worker, ring: new RingWriter(memory) };
    return this.current;
  }

  private onMessage(m: FromWorker): void {
    if (this.stopped) return;
    if (m.type === 'member') return this.service.appendMember(m.sessionId, Buffer.from(m.member.buffer, m.member.byteOffset, m.member.byteLength), m.eventBytes);
    this.ended(m.slot);
  }

  /** The worker stopped (it failed): what it had not written is gone, and its sessions end incomplete. */
  private lost(worker: Worker): void {
    if (this.current?.worker !== worker || this.stopped) return;
    this.current = undefined;
    for (const [slot, s] of this.sessions) {
      this.service.markLost(s.sessionId);
      this.ended(slot);
    }
  }
}

/** One session's events into the ring. */
class PgSessionWriter implements PgSessionObserver {
  /** The statement event last written: the same one again (a prepared statement's execution) is sent as STATEMENT_AGAIN. */
  private last: StatementEvent | undefined;
  /** Rows of the current statement so far: those beyond the cap are not sent (the result's count tells how many). */
  private rows = 0;

  constructor(
    private readonly pipe: PgRecordingPipe,
    private readonly slot: number,
    private readonly cap: number,
  ) {}

  statement(e: StatementEvent): void {
    this.rows = 0;
    const ms = Date.now();
    if (e === this.last) {
      const out = this.pipe.open(STATEMENT_AGAIN, this.slot, RECORD_HEADER_BYTES + UINT_BYTES);
      if (!out) return;
      out.uint(ms);
      return this.pipe.close(out);
    }
    const out = this.pipe.open(STATEMENT, this.slot, statementMax(e));
    if (!out) return;
    writeStatement(out, e, this.last, ms);
    this.last = e;
    this.pipe.close(out);
  }

  dataRow(buf: Buffer, start: number, end: number): void {
    // A large result's rows past the cap would fill the ring only to be dropped by the worker.
    if (++this.rows > this.cap) return;
    const out = this.pipe.open(ROW, this.slot, RECORD_HEADER_BYTES + end - start);
    if (!out) return;
    out.bytes(buf, start, end);
    this.pipe.close(out);
  }

  cycleEnd(e: CycleEndEvent): void {
    this.rows = 0;
    const out = this.pipe.open(RESULT, this.slot, resultMax(e));
    if (!out) return;
    writeResult(out, e);
    this.pipe.close(out);
  }

  serverMessage(e: ServerMessageEvent): void {
    this.line({ t: isoNow(), e: e.kind, code: e.fields.C, message: e.fields.M, detail: e.fields.D });
  }

  /** The shared events: an approval's steps (decisions are the hot path's statement events). */
  event(e: SessionEvent): void {
    if (e.e === 'approval') this.line({ t: isoNow(), e: 'approval', requestId: e.requestId, outcome: e.outcome, reviewers: e.reviewers });
  }

  end(reason: string): void {
    this.pipe.end(this.slot, JSON.stringify({ t: isoNow(), e: 'session.end', reason }));
  }

  private line(event: object): void {
    const json = JSON.stringify(event);
    const out = this.pipe.open(JSON_EVENT, this.slot, RECORD_HEADER_BYTES + utf8Max(json));
    if (!out) return;
    out.str(json);
    this.pipe.close(out);
  }
}

const pipes = new WeakMap<RecordingService, PgRecordingPipe>();

/** The service's one recording pipe (and worker) for every Postgres target; stopped with the service. */
function pipeOf(service: RecordingService): PgRecordingPipe {
  let pipe = pipes.get(service);
  if (!pipe) {
    const created = new PgRecordingPipe(service, (e) => service.reportError('pg-recording-worker', e));
    service.onStop(() => void created.stop());
    pipes.set(service, created);
    pipe = created;
  }
  return pipe;
}

/** Postgres sessions recorded unless the policy turns recording off (read when each session starts). */
export function pgRecorder(service: RecordingService, target: string, settings: () => RecordingSettings): PgSessionEvents {
  return {
    sessionStart(e) {
      const { mode, maxRowsPerStatement } = settings();
      if (mode === 'off') return undefined;
      const identity = recordedIdentity(e.identity);
      service.begin({ sessionId: e.sessionId, target, protocol: 'postgres', format: 'ndjson', identity, startedAt: e.at.toISOString() });
      const startLine = JSON.stringify({ t: e.at.toISOString(), e: 'session.start', sessionId: e.sessionId, target, identity, startupUser: e.startupUser, database: e.database, application: e.applicationName, client: e.clientAddress });
      const pipe = pipeOf(service);
      const slot = pipe.begin(e.sessionId, maxRowsPerStatement, startLine, () => service.end(e.sessionId, true));
      return new PgSessionWriter(pipe, slot, maxRowsPerStatement);
    },
  };
}
