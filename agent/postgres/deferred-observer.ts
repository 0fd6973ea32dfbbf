import type { ApprovalEvent, CycleEndEvent, PgSessionObserver, ServerMessageEvent, StatementEvent } from './events';

const STATEMENT = 0;
const ROW = 1;
const CYCLE_END = 2;

/**
 * Hands a session's per-transaction events (statement, rows, result) to its observer after the bytes
 * that caused them were forwarded, not before: the events are queued and passed on in a microtask,
 * which runs once the socket's data handler (and its write) returns. With one client the proxy is on
 * every transaction's path, and the recorder's work then overlaps the database's or the client's turn
 * instead of delaying it. The rare events (a notice, an approval, the session's end) pass the queue
 * first and are handed on at once, so the observer sees every event in the order the session made them.
 *
 * A queued row is kept by reference: the proxy never writes again into a buffer it has forwarded (a
 * socket's chunk, or a masked row's own bytes). The queue holds at most one handler's events (a chunk's
 * rows: the framer's chunk is bounded), and lets go of them when it drains.
 */
export class DeferredObserver implements PgSessionObserver {
  /** Parallel arrays, reused from one drain to the next: nothing is allocated per event once they have grown. */
  private readonly kinds: number[] = [];
  private readonly items: (StatementEvent | CycleEndEvent | Buffer | undefined)[] = [];
  private readonly starts: number[] = [];
  private readonly ends: number[] = [];
  private queued = 0;
  private scheduled = false;
  private readonly drainLater = (): void => {
    this.scheduled = false;
    this.drain();
  };

  constructor(
    private readonly inner: PgSessionObserver,
    /** An observer that threw (it must not): told here, as a microtask's exception would end the process. */
    private readonly onError: (e: unknown) => void,
  ) {}

  statement(e: StatementEvent): void {
    this.push(STATEMENT, e, 0, 0);
  }

  dataRow(buf: Buffer, start: number, end: number): void {
    this.push(ROW, buf, start, end);
  }

  cycleEnd(e: CycleEndEvent): void {
    this.push(CYCLE_END, e, 0, 0);
  }

  serverMessage(e: ServerMessageEvent): void {
    this.drain();
    this.inner.serverMessage(e);
  }

  approval(e: ApprovalEvent): void {
    this.drain();
    this.inner.approval(e);
  }

  sessionEnd(reason: string): void {
    this.drain();
    this.inner.sessionEnd(reason);
  }

  /** Hands on what is queued, in order. */
  drain(): void {
    const n = this.queued;
    if (n === 0) return;
    const { inner, kinds, items, starts, ends } = this;
    try {
      for (let i = 0; i < n; i++) {
        const item = items[i];
        switch (kinds[i]) {
          case STATEMENT:
            inner.statement(item as StatementEvent);
            break;
          case ROW:
            inner.dataRow(item as Buffer, starts[i] as number, ends[i] as number);
            break;
          default:
            inner.cycleEnd(item as CycleEndEvent);
        }
      }
    } catch (e) {
      // The rest of this batch is lost to the observer; the next batch keeps its order.
      this.onError(e);
    }
    for (let i = 0; i < n; i++) items[i] = undefined;
    this.queued = 0;
  }

  private push(kind: number, item: StatementEvent | CycleEndEvent | Buffer, start: number, end: number): void {
    const i = this.queued++;
    this.kinds[i] = kind;
    this.items[i] = item;
    this.starts[i] = start;
    this.ends[i] = end;
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(this.drainLater);
    }
  }
}
