import type { StatementEvent } from './events';
import type { DeferredObserver } from './deferred-observer';
import { readBindStatementName, readCommandTag, RecentCstring } from './protocol/reader';
import type { Cycle } from './response-order';
import { MAX_PREPARED_PER_SESSION } from './statement-judge';

/**
 * What a recorded Postgres session reports beyond the messages themselves: each execution of a named
 * prepared statement (a Bind of it is recorded as its statement again, so that every execution shows,
 * not only the Parse), and the command tags of each cycle, from which a DEALLOCATE confirmed by the
 * server forgets its name. Only recorded sessions have one; its methods run on the hot path.
 */
export class RecordingTap {
  /** The statement event of the last statement judged. */
  private last: StatementEvent | undefined;
  private readonly named = new Map<string, StatementEvent>();
  /**
   * The name the last Bind executed and its statement (undefined: none by that name): a session mostly
   * executes the same one again, which then costs no map lookup. Dropped whenever the map changes.
   */
  private lastExecutedName: string | undefined;
  private lastExecutedStatement: StatementEvent | undefined;
  /** Named statements parsed in the batch now open: a Bind of one there is the execution already recorded. */
  private readonly parsedInBatch = new Set<string>();
  // Recorded sessions repeat these: decoded once while they stay the same.
  private readonly recentStatementName = new RecentCstring();
  private readonly recentCommandTag = new RecentCstring();

  constructor(readonly observer: DeferredObserver) {}

  /** Whether any named statement is tracked (the hot path checks this before anything else). */
  get tracksNames(): boolean {
    return this.named.size > 0;
  }

  statement(e: StatementEvent): void {
    this.last = e;
    this.observer.statement(e);
  }

  /** A Parse of a named statement was forwarded: its later Binds are recorded as the statement judged last. */
  parsed(name: string): void {
    if (!this.last || name === '') return;
    this.parsedInBatch.add(name);
    if (this.named.size >= MAX_PREPARED_PER_SESSION && !this.named.has(name)) return;
    this.named.set(name, this.last);
    this.lastExecutedName = undefined;
  }

  /** A Close of a named statement. */
  closed(name: string): void {
    this.named.delete(name);
    this.lastExecutedName = undefined;
  }

  synced(): void {
    if (this.parsedInBatch.size > 0) this.parsedInBatch.clear();
  }

  /** A Bind (`buf[start..end)`): records the execution of the named statement it binds, once per batch. */
  bound(buf: Buffer, start: number, end: number): void {
    const name = readBindStatementName(buf, start, end, this.recentStatementName);
    if (this.parsedInBatch.size > 0 && this.parsedInBatch.delete(name)) return;
    if (this.lastExecutedName !== name) {
      this.lastExecutedName = name;
      this.lastExecutedStatement = this.named.get(name);
    }
    if (this.lastExecutedStatement) this.observer.statement(this.lastExecutedStatement);
  }

  /** A simple Query that drops exactly one named statement: forgotten when the server confirms it. */
  dropsOnConfirm(cycle: Cycle, deallocates: readonly string[] | 'all'): void {
    if (this.named.size > 0 && deallocates !== 'all' && deallocates.length === 1) cycle.deallocates = deallocates[0];
  }

  /** A CommandComplete of the cycle now answered. */
  commandComplete(cycle: Cycle, buf: Buffer, start: number, end: number): void {
    const tag = readCommandTag(buf, start, end, this.recentCommandTag);
    cycle.tags.push(tag);
    if (this.named.size > 0) this.forgetDeallocated(cycle, tag);
  }

  /**
   * A named statement dropped by SQL is forgotten when the server confirms it, not when the statement
   * is judged: one that failed (or never ran after an error before it) leaves the name prepared, and a
   * Bind of a name forgotten too early would run unrecorded. `DEALLOCATE ALL` and `DISCARD ALL` say
   * what they dropped; a bare `DEALLOCATE` tag only in a simple Query that names one statement.
   */
  private forgetDeallocated(cycle: Cycle, tag: string): void {
    if (tag === 'DEALLOCATE ALL' || tag === 'DISCARD ALL') {
      this.named.clear();
      this.lastExecutedName = undefined;
    } else if (tag === 'DEALLOCATE' && cycle.deallocates !== undefined) this.closed(cycle.deallocates);
  }
}
