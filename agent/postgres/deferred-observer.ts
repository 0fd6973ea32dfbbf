import type { SessionEvent } from '../sessions/events';
import type { CycleEndEvent, PgSessionObserver, ServerMessageEvent, StatementEvent } from './events';

const STATEMENT = 0;
const DATA_ROW = 1;
const CYCLE_END = 2;
const SERVER_MESSAGE = 3;
const SESSION_EVENT = 4;

type Payload = StatementEvent | Buffer | CycleEndEvent | ServerMessageEvent | SessionEvent;

/**
 * Hands a session's events to its observer once the bytes they describe have been written on to the
 * client or the database: recording then runs while they work instead of before (a lone client's
 * transaction waits for every microsecond on its path). The session's socket handlers `hold()` the
 * events they produce and `release()` them after their writes; events from anywhere else (approvals, a
 * catalog reload) go in a microtask. Order is kept; nothing is copied: a DataRow's buffer is a chunk as
 * read, or an output buffer of the session's, and neither is written into again before the socket's
 * write callback (a later tick than any delivery here; output buffers are then reused). The queue
 * is plain parallel arrays, reused, and holds at most one event per message of one read.
 */
export class DeferredObserver implements PgSessionObserver {
  private readonly kinds: number[] = [];
  private readonly payloads: (Payload | undefined)[] = [];
  private readonly starts: number[] = [];
  private readonly ends: number[] = [];
  private queued = 0;
  private holding = false;
  private readonly drainNow = (): void => this.drain();

  constructor(
    private readonly inner: PgSessionObserver,
    /** An observer that throws (it must not) is reported here: a microtask's throw would end the process. */
    private readonly onError: (e: unknown) => void,
  ) {}

  statement(e: StatementEvent): void {
    this.push(STATEMENT, e, 0, 0);
  }

  dataRow(buf: Buffer, start: number, end: number): void {
    this.push(DATA_ROW, buf, start, end);
  }

  cycleEnd(e: CycleEndEvent): void {
    this.push(CYCLE_END, e, 0, 0);
  }

  serverMessage(e: ServerMessageEvent): void {
    this.push(SERVER_MESSAGE, e, 0, 0);
  }

  event(e: SessionEvent): void {
    this.push(SESSION_EVENT, e, 0, 0);
  }

  /** The last event: what is queued goes first, and the end is not deferred (the session is closing). */
  end(reason: string): void {
    this.drain();
    this.inner.end(reason);
  }

  /** Events from now to `release()` wait for it (no microtask: node allocates two objects for each). */
  hold(): void {
    this.holding = true;
  }

  release(): void {
    this.holding = false;
    this.drain();
  }

  /** Everything queued, in order, to the observer now. */
  drain(): void {
    const n = this.queued;
    if (n === 0) return;
    const { kinds, payloads, starts, ends } = this;
    for (let i = 0; i < n; i++) {
      const payload = payloads[i];
      payloads[i] = undefined;
      try {
        this.deliver(kinds[i] as number, payload as Payload, starts[i] as number, ends[i] as number);
      } catch (e) {
        this.onError(e);
      }
    }
    this.queued = 0;
  }

  private deliver(kind: number, payload: Payload, start: number, end: number): void {
    const inner = this.inner;
    switch (kind) {
      case STATEMENT:
        inner.statement(payload as StatementEvent);
        break;
      case DATA_ROW:
        inner.dataRow(payload as Buffer, start, end);
        break;
      case CYCLE_END:
        inner.cycleEnd(payload as CycleEndEvent);
        break;
      case SERVER_MESSAGE:
        inner.serverMessage(payload as ServerMessageEvent);
        break;
      default:
        inner.event(payload as SessionEvent);
    }
  }

  private push(kind: number, payload: Payload, start: number, end: number): void {
    const i = this.queued++;
    if (i === 0 && !this.holding) queueMicrotask(this.drainNow);
    this.kinds[i] = kind;
    this.payloads[i] = payload;
    this.starts[i] = start;
    this.ends[i] = end;
  }
}
