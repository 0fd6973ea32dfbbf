import type { MaskingProfile } from '../../core/masking/profile';
import type { Decision } from '../../core/policy/decide';
import type { AgentSettings } from './agent-settings';
import { twokeySetting } from './agent-settings';
import { HELD_BATCH_RULE, simpleStatement } from './approval/approved-request';
import type { CollectedBatch, Held } from './approval/held-approvals';
import type { CopyPlan } from './masking/copy-rows';
import { PgSessionMasking, type StatementVerdict } from './masking/pg-session-masking';
import { FRONTEND, SQLSTATE } from './protocol/codes';
import { bodyOf, readParse, readTarget } from './protocol/reader';
import { errorResponse } from './protocol/writer';
import { refusal } from './refusal';
import type { ResponseOrder } from './response-order';
import type { ResponsePath } from './response-path';
import type { Live } from './session-deps';
import type { Judgement } from './statement-judge';

/** What the statement path asks of its session: forwarding, answers made here, holds, the end. */
export interface ClientPort {
  forward(buf: Buffer, start: number, end: number): void;
  forwardInBatch(buf: Buffer, start: number, end: number): void;
  refuseInBatch(error: Buffer): void;
  refuseCycle(messages: Buffer[]): void;
  write(bytes: Buffer): void;
  hold(live: Live, held: Held): void;
  collect(batch: CollectedBatch): void;
  /** Holds the client's input until `done` settles (a catalog reload), this message first in line. */
  holdUntil(done: Promise<void>, buf: Buffer, start: number, end: number): void;
  fatal(code: string, message: string): void;
  /** Forwards the Terminate and ends the session. */
  terminate(buf: Buffer, start: number, end: number): void;
  /** The caller's mask profile under the current policy. */
  currentProfile(live: Live): MaskingProfile | undefined;
}

/**
 * The client's messages on their way to the database, once the session is ready: each statement
 * judged (and recorded), masking's say taken, then forwarded on the read credential, held for
 * approval, or refused in the protocol's place for it (ResponseOrder). Extended-protocol messages
 * after a refusal are skipped up to Sync, as the server would.
 */
export class ClientPath {
  constructor(
    private readonly port: ClientPort,
    private readonly order: ResponseOrder,
    private readonly responses: ResponsePath,
    private readonly settings: AgentSettings,
  ) {}

  onMessage(live: Live, buf: Buffer, start: number, end: number, code: number): void {
    const order = this.order;
    if (order.skippingToSync && code !== FRONTEND.Sync && code !== FRONTEND.Terminate) return;
    const tap = this.responses.tap;
    switch (code) {
      case FRONTEND.Query: {
        const sql = bodyOf(buf, start, end).cstring();
        const setting = twokeySetting(sql);
        if (setting) return this.applySetting(live, setting.name, setting.value);
        const script = this.settings.takeScript();
        const judged = this.judge(live, sql, 'simple');
        const verdict = judged.decision;
        const masking = this.checkMasking(live, verdict, sql, buf, start, end);
        if (!masking) return;
        if (masking.kind === 'deny') return this.port.refuseCycle([errorResponse({ severity: 'ERROR', code: SQLSTATE.insufficientPrivilege, message: masking.message })]);
        if (verdict.kind === 'allow') {
          this.port.forward(buf, start, end);
          this.expectReply(live, code, buf, start, end, masking.kind === 'ok' ? masking.copy : undefined);
          const cycle = order.query();
          if (tap) tap.dropsOnConfirm(cycle, judged.classification.deallocates);
        } else if (verdict.kind === 'approve') {
          this.port.hold(live, { kind: script ? 'script' : 'statement', statement: simpleStatement(sql), decision: verdict, cls: judged.class });
        } else this.port.refuseCycle([errorResponse(refusal(verdict))]);
        return;
      }
      case FRONTEND.Parse: {
        const parse = readParse(bodyOf(buf, start, end));
        const judged = this.judge(live, parse.query, 'extended');
        const verdict = judged.decision;
        const masking = this.checkMasking(live, verdict, parse.query, buf, start, end);
        if (!masking) return;
        if (masking.kind === 'deny' || masking.copy?.columns?.some((c) => c)) {
          const message = masking.kind === 'deny' ? masking.message : 'twokey: COPY of masked columns must use the simple query protocol';
          return this.port.refuseInBatch(errorResponse({ severity: 'ERROR', code: SQLSTATE.insufficientPrivilege, message }));
        }
        if (verdict.kind === 'allow') {
          tap?.parsed(parse.name);
          this.expectReply(live, code, buf, start, end);
          return this.port.forwardInBatch(buf, start, end);
        }
        if (verdict.kind === 'approve' && !order.batchOpen) {
          return this.port.collect({ messages: [Buffer.from(buf.subarray(start, end))], decision: verdict, cls: judged.class });
        }
        if (verdict.kind === 'approve') {
          return this.port.refuseInBatch(errorResponse({ severity: 'ERROR', code: SQLSTATE.featureNotSupported, message: HELD_BATCH_RULE, detail: 'other messages came before its Parse in the batch' }));
        }
        return this.port.refuseInBatch(errorResponse(refusal(verdict)));
      }
      case FRONTEND.Bind:
        if (tap !== undefined && tap.tracksNames) tap.bound(buf, start, end);
        this.expectReply(live, code, buf, start, end);
        return this.port.forwardInBatch(buf, start, end);
      case FRONTEND.Describe:
      case FRONTEND.Execute:
        this.expectReply(live, code, buf, start, end);
        return this.port.forwardInBatch(buf, start, end);
      case FRONTEND.Close:
        if (tap !== undefined && tap.tracksNames) {
          const target = readTarget(bodyOf(buf, start, end));
          if (target.kind === 'S') tap.closed(target.name);
        }
        this.expectReply(live, code, buf, start, end);
        return this.port.forwardInBatch(buf, start, end);
      case FRONTEND.Flush:
        return this.port.forwardInBatch(buf, start, end);
      case FRONTEND.Sync: {
        tap?.synced();
        const sync = order.sync(this.responses.transactionStatus);
        if (!sync.forward) return sync.now && this.port.write(sync.now);
        this.port.forward(buf, start, end);
        return this.expectReply(live, code, buf, start, end);
      }
      case FRONTEND.CopyData:
      case FRONTEND.CopyDone:
      case FRONTEND.CopyFail:
        // Only meaningful after the server accepted a COPY FROM STDIN, which was decided as a statement.
        return this.port.forward(buf, start, end);
      case FRONTEND.FunctionCall:
        return this.port.refuseCycle([errorResponse({ severity: 'ERROR', code: SQLSTATE.insufficientPrivilege, message: 'twokey: the fast-path function call protocol is not allowed' })]);
      case FRONTEND.Terminate:
        return this.port.terminate(buf, start, end);
      default:
        return this.port.fatal(SQLSTATE.protocolViolation, `twokey: unexpected message type ${JSON.stringify(String.fromCharCode(code))}`);
    }
  }

  /** Classifies and decides one statement string and records it. */
  private judge(live: Live, sql: string, protocol: 'simple' | 'extended'): Judgement {
    const judged = live.judge.judge(sql, this.responses.standardConformingStrings);
    const tap = this.responses.tap;
    if (tap) {
      const decision = judged.decision;
      tap.statement({
        // A masked subject's recording holds what the detectors leave of the statement's literals.
        text: live.masking ? live.masking.scrub(sql) : sql,
        protocol,
        class: judged.class,
        decision: decision.kind,
        rule: decision.rule,
        reason: decision.kind === 'deny' ? decision.reason : judged.classification.reason,
      });
    }
    return judged;
  }

  /** Masking's say on a statement (see PgSessionMasking.check); a reload holds the client until it is done. */
  private checkMasking(live: Live, decision: Decision, sql: string, buf: Buffer, start: number, end: number): Exclude<StatementVerdict, { kind: 'reload' | 'reconnect' }> | undefined {
    const verdict = PgSessionMasking.check(live.masking, decision, sql, () => this.port.currentProfile(live), this.responses.standardConformingStrings);
    if (verdict.kind === 'reconnect') return void this.port.fatal(SQLSTATE.insufficientPrivilege, 'twokey: masking now applies to this session; reconnect');
    if (verdict.kind !== 'reload') return verdict;
    this.port.holdUntil(verdict.done, buf, start, end);
    return undefined;
  }

  /** Tells the result masker what the server will answer, in order; ends the session past the cap. */
  private expectReply(live: Live, code: number, buf: Buffer, start: number, end: number, copy?: CopyPlan): void {
    const masking = live.masking;
    if (masking && !masking.masker.expectClient(code, buf, start, end, copy)) this.port.fatal(SQLSTATE.programLimitExceeded, 'twokey: too many messages awaiting a reply');
  }

  private applySetting(live: Live, name: string, value: string): void {
    const outcome = this.settings.apply(name, value, live.judge, live.session.target);
    if (outcome.kind === 'hold') return this.port.hold(live, outcome.held);
    this.port.refuseCycle(outcome.messages);
  }
}
