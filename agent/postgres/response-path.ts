import type { DeferredObserver } from './deferred-observer';
import type { ResultMasker } from './masking/result-masker';
import { ByteBatch } from './protocol/byte-batch';
import { BACKEND, SQLSTATE, type TransactionStatus } from './protocol/codes';
import { bodyOf, readErrorFields } from './protocol/reader';
import { SliceRun } from './protocol/slice-run';
import { errorResponse } from './protocol/writer';
import type { RecordingTap } from './recording-tap';
import type { ResponseOrder } from './response-order';

/** Where the responses go, and the upstream socket's flow control. */
export interface ResponseSink {
  /** To the client; `written` once the bytes are handed to the kernel. */
  write(bytes: Buffer, written?: () => void): void;
  pauseUpstream(): void;
  resumeUpstream(): void;
  closed(): boolean;
  catalogFailed(error: unknown): void;
}

/**
 * The database's messages on their way to the client: masked (for masked subjects), kept in order
 * with what the agent answered itself (ResponseOrder), counted and tapped for the recording, and
 * written in as few writes as the chunk allows. Tracks what the server reports about the session
 * (transaction status, standard_conforming_strings).
 */
export class ResponsePath {
  transactionStatus: TransactionStatus = 'I';
  standardConformingStrings = true;
  /** Set once the session is recorded (and its tap, which only recorded sessions have). */
  observer: DeferredObserver | undefined;
  tap: RecordingTap | undefined;
  /** Set for the whole session when the policy masks its subject. */
  masker: ResultMasker | undefined;
  /** After a result that could not be masked, the rest of its cycle is dropped up to ReadyForQuery. */
  private refusingResult = false;
  /** Server messages that arrived while the catalog reloads for a description it did not know. */
  private serverQueue: Buffer[] | undefined;
  private planUnknownRelations = false;
  /** The part of the current server chunk not yet written to the client. */
  private readonly serverRun = new SliceRun((slice) => this.sink.write(slice));
  /** Masked sessions copy what they send into one buffer per server chunk (rewritten rows are new bytes). */
  private readonly maskedOut = new ByteBatch((bytes, written) => this.sink.write(bytes, written));

  constructor(
    private readonly order: ResponseOrder,
    private readonly sink: ResponseSink,
  ) {}

  /** True while the catalog reloads (the upstream stays paused until it is done). */
  get reloading(): boolean {
    return this.serverQueue !== undefined;
  }

  readonly onMessage = (original: Buffer, originalStart: number, originalEnd: number, code: number): void => {
    let buf = original;
    let start = originalStart;
    let end = originalEnd;
    const masker = this.masker;
    if (masker) {
      if (this.serverQueue) {
        this.serverQueue.push(Buffer.from(buf.subarray(start, end)));
        return;
      }
      const outcome = masker.handle(buf, start, end, code, this.planUnknownRelations || this.refusingResult, this.refusingResult ? undefined : this.maskedOut);
      if (outcome.kind === 'reload') return this.pauseForCatalog(masker, buf, start, end);
      if (this.refusingResult && code !== BACKEND.ReadyForQuery) return;
      this.refusingResult = false;
      if (outcome.kind === 'refuse') {
        this.refusingResult = code !== BACKEND.ReadyForQuery;
        this.order.current?.errors.push(outcome.reason);
        this.append(errorResponse({ severity: 'ERROR', code: SQLSTATE.insufficientPrivilege, message: outcome.reason }), 0, undefined);
        return;
      }
      if (outcome.kind === 'written') {
        buf = outcome.bytes;
        start = 0;
        end = buf.length;
      } else if (outcome.kind === 'emitted') {
        // Only DataRows are rewritten in place: count and record them; they are already in the output.
        const cycle = this.order.current;
        if (cycle) cycle.rows++;
        this.observer?.dataRow(outcome.buf, outcome.start, outcome.end);
        return;
      }
    }
    const cycle = this.order.current;
    switch (code) {
      case BACKEND.DataRow:
        if (cycle) cycle.rows++;
        this.observer?.dataRow(buf, start, end);
        break;
      case BACKEND.CommandComplete:
        if (cycle && this.tap) this.tap.commandComplete(cycle, buf, start, end);
        break;
      case BACKEND.ErrorResponse:
      case BACKEND.NoticeResponse: {
        const fields = readErrorFields(buf, start, end);
        if (code === BACKEND.ErrorResponse) cycle?.errors.push(fields.M ?? '');
        this.observer?.serverMessage({ kind: code === BACKEND.ErrorResponse ? 'error' : 'notice', fields });
        break;
      }
      case BACKEND.ParameterStatus: {
        const r = bodyOf(buf, start, end);
        if (r.cstring() === 'standard_conforming_strings') this.standardConformingStrings = r.cstring() !== 'off';
        break;
      }
      case BACKEND.ReadyForQuery: {
        this.transactionStatus = String.fromCharCode(buf[start + 5] as number) as TransactionStatus;
        const done = this.order.ready();
        if (!done) break;
        if (done.before.length) {
          this.flush();
          this.sink.write(Buffer.concat(done.before));
        }
        this.append(buf, start, end);
        if (done.after.length) {
          this.flush();
          this.sink.write(Buffer.concat(done.after));
        }
        if (this.observer) {
          const endedAt = Date.now();
          this.observer.cycleEnd({ endedAt, durationMs: endedAt - done.startedAt, commandTags: done.tags, rowsSent: done.rows, errors: done.errors });
        }
        return;
      }
      default:
        break;
    }
    this.append(buf, start, end);
  };

  private append(buf: Buffer, start: number, end: number = buf.length): void {
    if (this.masker) this.maskedOut.add(buf, start, end);
    else this.serverRun.add(buf, start, end);
  }

  /** What the current chunk left to write, written now. */
  flush(): void {
    this.serverRun.flush();
    this.maskedOut.flush();
  }

  /**
   * A description names a relation the catalog does not know (created since it was read): the stream
   * pauses, the catalog reloads, and the queued messages go on in order.
   */
  private pauseForCatalog(masker: ResultMasker, buf: Buffer, start: number, end: number): void {
    this.serverQueue = [Buffer.from(buf.subarray(start, end))];
    this.sink.pauseUpstream();
    masker
      .reloadCatalog()
      .catch((e: unknown) => this.sink.catalogFailed(e))
      .finally(() => {
        const queue = this.serverQueue ?? [];
        this.serverQueue = undefined;
        if (this.sink.closed()) return;
        // What the reload still cannot name is planned as unknown (masked in full), not reloaded again.
        this.planUnknownRelations = true;
        const first = queue.shift();
        if (first) this.onMessage(first, 0, first.length, first[0] as number);
        this.planUnknownRelations = false;
        for (const m of queue) this.onMessage(m, 0, m.length, m[0] as number);
        this.flush();
        if (!this.serverQueue) this.sink.resumeUpstream();
      });
  }
}
