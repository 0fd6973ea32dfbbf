import { readyForQuery } from './protocol/writer';
import type { TransactionStatus } from './protocol/codes';

/** One request/response cycle the database owes a ReadyForQuery for, with what to inject around it. */
export interface Cycle {
  /** Refusals of messages inside this extended-protocol batch: sent before its ReadyForQuery. */
  readonly before: Buffer[];
  /** Answers made here for requests after this cycle's: sent after its ReadyForQuery. */
  readonly after: Buffer[];
  readonly startedAt: number;
  /** What the recording needs of the cycle: command tags, errors, rows. */
  readonly tags: string[];
  readonly errors: string[];
  rows: number;
  /** The one name a simple Query's DEALLOCATE drops, forgotten once the server confirms it (recorded sessions). */
  deallocates: string | undefined;
}

const newCycle = (): Cycle => ({ before: [], after: [], startedAt: Date.now(), tags: [], errors: [], rows: 0, deallocates: undefined });

/**
 * Keeps a session's responses in order although some are made by the agent: each forwarded Query or
 * Sync owes one ReadyForQuery from the database, and an answer made here (a refusal, a SET of the
 * agent's own) goes before the right one (inside an extended-protocol batch) or after it (between
 * cycles). No I/O: the session writes what `answer` returns now, and the ReadyForQuery it reads says
 * which cycle ended and what goes around it.
 */
export class ResponseOrder {
  /** Cycles sent to the database and not yet answered, oldest first. */
  readonly pending: Cycle[] = [];
  /** The extended-protocol batch being forwarded (messages since the last Sync). */
  private openBatch: Cycle | undefined;
  /** After a refused extended-protocol message, everything up to Sync is discarded, as the server would. */
  skippingToSync = false;
  private readonly idleWaiters: (() => void)[] = [];

  /** The cycle the database is answering now (rows and tags are counted into it). */
  get current(): Cycle | undefined {
    return this.pending[0];
  }

  get batchOpen(): boolean {
    return this.openBatch !== undefined;
  }

  /** A Query was forwarded: a cycle of its own. */
  query(): Cycle {
    const cycle = newCycle();
    this.pending.push(cycle);
    return cycle;
  }

  /** An extended-protocol message was forwarded: it belongs to the open batch (opened now if need be). */
  inBatch(): void {
    if (this.openBatch) return;
    this.openBatch = newCycle();
    this.pending.push(this.openBatch);
  }

  /**
   * A Sync arrived. When the batch was being skipped and nothing of it reached the database, the
   * answer (ReadyForQuery alone) is made here: returned to be written now, or queued in order.
   * Otherwise the Sync is to be forwarded (`forward: true`) and ends the batch.
   */
  sync(status: TransactionStatus): { forward: true } | { forward: false; now: Buffer | undefined } {
    const skipped = this.skippingToSync;
    this.skippingToSync = false;
    if (skipped && !this.openBatch) return { forward: false, now: this.refuseCycle([], status) };
    if (!this.openBatch) this.pending.push(newCycle());
    this.openBatch = undefined;
    return { forward: true };
  }

  /** A refused extended-protocol message: its error goes where the server would have put it; then skip to Sync. */
  refuseInBatch(error: Buffer): Buffer | undefined {
    this.skippingToSync = true;
    if (!this.openBatch) return this.answer(error);
    this.openBatch.before.push(error);
    return undefined;
  }

  /** A whole cycle answered here: the messages and then ReadyForQuery, after everything owed before it. */
  refuseCycle(messages: readonly Buffer[], status: TransactionStatus): Buffer | undefined {
    return this.answer(Buffer.concat([...messages, readyForQuery(status)]));
  }

  /** Bytes made here: to be written now (returned) when nothing is owed before them, else queued after the last cycle. */
  answer(bytes: Buffer): Buffer | undefined {
    const last = this.pending[this.pending.length - 1];
    if (!last) return bytes;
    last.after.push(bytes);
    return undefined;
  }

  /** The database's ReadyForQuery: the cycle it ends (with what goes before and after it), if any was owed. */
  ready(): Cycle | undefined {
    const done = this.pending.shift();
    if (this.pending.length === 0 && this.idleWaiters.length > 0) for (const w of this.idleWaiters.splice(0)) w();
    return done;
  }

  /** Resolves once nothing is owed (an approval's answer goes after everything before it). */
  idle(): Promise<void> {
    if (this.pending.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}
