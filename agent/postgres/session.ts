import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import type { Identity } from '../../core/identity/identity';
import type { Logger } from '../../core/log';
import type { Action, Decision } from '../../core/policy/decide';
import type { ApprovalGate } from '../approvals/approval-flow';
import type { SessionEvent } from '../sessions/events';
import { startSession, type StartedSession } from '../sessions/lifecycle';
import type { SessionRegistry } from '../sessions/registry';
import { isLoopback } from '../net/loopback';
import { AgentSettings, twokeySetting } from './agent-settings';
import { heldExtendedStatement, MAX_HELD_BATCH_MESSAGES, simpleStatement } from './approval/approved-request';
import { runHeld, type Held } from './approval/held-approvals';
import type { StatementClassifier } from './classify/classifier';
import { DeferredObserver } from './deferred-observer';
import type { PgSessionEvents } from './events';
import type { SessionMasking } from './masking/masking-service';
import type { CopyPlan } from './masking/copy-rows';
import { PgSessionMasking, type StatementVerdict } from './masking/pg-session-masking';
import { FRONTEND, SQLSTATE } from './protocol/codes';
import { MessageFramer, type FramerError } from './protocol/framer';
import { bodyOf, ProtocolReadError, readParse, readTarget } from './protocol/reader';
import { SliceRun } from './protocol/slice-run';
import { authenticationRequest, backendKeyData, errorResponse, parameterStatus, readyForQuery, terminateMessage, type ErrorFields } from './protocol/writer';
import { AUTH } from './protocol/codes';
import { RecordingTap } from './recording-tap';
import { ResponseOrder } from './response-order';
import { ResponsePath } from './response-path';
import { StartupHandshake, type StartupAction } from './startup/handshake';
import { StatementJudge } from './statement-judge';
import { connectUpstream, UpstreamError, type UpstreamConnection } from './upstream/connect';
import { ReadBuffers } from './upstream/read-buffers';

export { MAX_PASSWORD_MESSAGE_BYTES } from './startup/handshake';

/** Time a client has to finish TLS, start-up and authentication. */
export const STARTUP_TIMEOUT_MS = 15_000;
/** Start-up parameters passed on to the database; everything else (notably `options`) is dropped. */
const FORWARDED_STARTUP_PARAMS = ['application_name', 'DateStyle', 'TimeZone', 'IntervalStyle', 'extra_float_digits', 'search_path'];
const WRITE_CONNECTION_PARAMS = { application_name: 'twokey', client_encoding: 'UTF8' };
/** SQLSTATE too_many_connections: a target at its cap of sessions. */
const TOO_MANY_CONNECTIONS = '53300';

export interface SessionLimits {
  /** Largest message a client may send (bytes, header included). */
  readonly maxClientMessageBytes: number;
  /** Largest single message accepted from the database (a DataRow is buffered whole only when split). */
  readonly maxServerMessageBytes: number;
}

export interface SessionTarget {
  readonly name: string;
  /** The one database this target serves (pinned in the agent's config). */
  readonly upstream: { host: string; port: number; database: string };
  readonly read: { user: string; password: string | undefined };
  readonly write: { user: string; password: string | undefined };
  readonly tls: SecureContext | undefined;
}

export interface SessionDeps {
  readonly target: SessionTarget;
  readonly limits: SessionLimits;
  readonly classifier: StatementClassifier;
  readonly verifyToken: (token: string) => Promise<{ ok: true; value: Identity } | { ok: false; error: { reason: string } }>;
  readonly decide: (identity: Identity, target: string, action: Action) => Decision;
  readonly events: PgSessionEvents;
  readonly log: Logger;
  readonly approvals: ApprovalGate;
  /** The planner's estimate of what a write touches, from the read credential; best effort. */
  readonly estimateBlastRadius: (sql: string) => Promise<string>;
  /** Every session of the agent: admits this one once its caller is known (strict recording, caps). */
  readonly sessions: SessionRegistry;
  /** Registers the session for CancelRequest; returns the key data the client gets. */
  readonly register: (session: ClientSession) => { pid: number; secret: number };
  readonly unregister: (session: ClientSession) => void;
  readonly cancel: (pid: number, secret: number) => void;
  /** Masking for subjects the policy masks; absent, nothing is masked. */
  readonly masking?: SessionMasking;
}

/** What only a session past authentication has: the types say what is known when. */
interface Live {
  readonly identity: Identity;
  readonly session: StartedSession<SessionEvent>;
  readonly upstream: UpstreamConnection;
  readonly judge: StatementJudge;
  readonly masking: PgSessionMasking | undefined;
}

type Phase = { readonly kind: 'startup'; readonly handshake: StartupHandshake } | { readonly kind: 'connecting' } | { readonly kind: 'ready'; readonly live: Live } | { readonly kind: 'closed' };

/**
 * One client connection: the start-up handshake (startup/handshake.ts), then a proxy to one upstream
 * connection on the read credential. This class keeps the socket wiring and backpressure; statements
 * are judged by StatementJudge, held for approval through the shared flow (approval/held-approvals.ts),
 * responses kept in order (ResponseOrder) on their way back (ResponsePath), masked (PgSessionMasking)
 * and recorded (RecordingTap).
 */
export class ClientSession {
  readonly id = randomUUID();
  private phase: Phase = { kind: 'startup', handshake: new StartupHandshake() };
  private client: Socket;
  private readonly clientFramer: MessageFramer;
  private readonly serverFramer: MessageFramer;
  private readonly startupTimer: NodeJS.Timeout;
  private keyData = { pid: 0, secret: 0 };
  private readonly order = new ResponseOrder();
  private readonly responses: ResponsePath;
  private readonly settings = new AgentSettings();
  private readonly outgoing: Buffer[] = [];
  private readonly outRun = new SliceRun((slice) => this.outgoing.push(slice));
  /** While a statement waits (approval, a catalog reload), later client messages wait here, in order. */
  private held = false;
  private readonly heldMessages: Buffer[] = [];
  /** An extended-protocol batch whose Parse needs approval, collected up to its Sync (to be read, never replayed). */
  private collecting: { messages: Buffer[]; decision: Extract<Decision, { kind: 'approve' }>; cls: Held['cls'] } | undefined;
  private readonly abort = new AbortController();
  /** The session in the agent's registry, from admission to its end. */
  private lifecycle: StartedSession<SessionEvent> | undefined;

  constructor(
    socket: Socket,
    private readonly deps: SessionDeps,
  ) {
    this.client = socket;
    this.clientFramer = new MessageFramer(deps.limits.maxClientMessageBytes);
    this.serverFramer = new MessageFramer(deps.limits.maxServerMessageBytes);
    this.responses = new ResponsePath(this.order, {
      write: (bytes, written) => this.writeClient(bytes, written),
      pauseUpstream: () => this.live?.upstream.socket.pause(),
      resumeUpstream: () => this.live?.upstream.socket.resume(),
      closed: () => this.closed,
      catalogFailed: (e) => this.catalogFailed(e),
    });
    this.startupTimer = setTimeout(() => this.fatal(SQLSTATE.protocolViolation, 'twokey: start-up timed out'), STARTUP_TIMEOUT_MS);
    this.attachClient(socket);
  }

  get clientAddress(): string {
    return `${this.client.remoteAddress ?? '?'}:${this.client.remotePort ?? '?'}`;
  }

  /** Read through a getter so that checks after an await are not narrowed away by the compiler. */
  private get closed(): boolean {
    return this.phase.kind === 'closed';
  }

  private get live(): Live | undefined {
    return this.phase.kind === 'ready' ? this.phase.live : undefined;
  }

  get backendKey(): { pid: number; secret: number } {
    return this.keyData;
  }

  get upstreamKey(): { pid: number; secret: number } | undefined {
    return this.live?.upstream.backendKey;
  }

  /** Ends the session from outside (agent shutdown, strict recording). */
  close(reason: string): void {
    this.fatal(SQLSTATE.connectionFailure, `twokey: ${reason}`);
  }

  private attachClient(socket: Socket): void {
    socket.setNoDelay(true);
    socket.on('data', this.onClientData);
    socket.on('error', () => this.teardown('client error'));
    socket.on('close', () => this.teardown('client closed'));
    socket.on('drain', () => {
      if (!this.responses.reloading) this.live?.upstream.socket.resume();
    });
  }

  private readonly onClientData = (chunk: Buffer): void =>
    this.guarded(() => {
      const phase = this.phase;
      if (phase.kind === 'ready') this.onReadyData(chunk, phase.live);
      else if (phase.kind === 'startup') this.onStartupData(phase.handshake, chunk);
      else if (phase.kind === 'connecting') this.fatal(SQLSTATE.protocolViolation, 'twokey: message before start-up finished');
    });

  /** Runs client input handling; a malformed message ends this session with an error, never the agent. */
  private guarded(handle: () => void): void {
    try {
      handle();
    } catch (e) {
      if (e instanceof ProtocolReadError) this.fatal(SQLSTATE.protocolViolation, `twokey: invalid message: ${e.message}`);
      else {
        this.deps.log.error('pg.session.failed', { sessionId: this.id, error: String(e) });
        this.fatal(SQLSTATE.internalError, 'twokey: internal error');
      }
    }
  }

  private rejectFrame(problem: FramerError): void {
    if (problem.kind === 'too-large') {
      this.deps.log.warn('pg.message.too-large', { sessionId: this.id, bytes: problem.length + 1 });
      this.fatal(SQLSTATE.programLimitExceeded, `twokey: message of ${problem.length + 1} bytes exceeds the limit of ${this.deps.limits.maxClientMessageBytes} bytes`);
    } else this.fatal(SQLSTATE.protocolViolation, `twokey: invalid message length ${problem.length}`);
  }

  // ---- start-up ----

  private onStartupData(handshake: StartupHandshake, chunk: Buffer): void {
    const connection = { tls: this.client instanceof TLSSocket, tlsAvailable: this.deps.target.tls !== undefined, loopback: isLoopback(this.client.remoteAddress ?? '') };
    for (const action of handshake.push(chunk, connection)) this.perform(action, handshake);
  }

  private perform(action: StartupAction, handshake: StartupHandshake): void {
    switch (action.kind) {
      case 'reply':
        return void this.client.write(action.bytes);
      case 'start-tls':
        if (this.deps.target.tls) this.upgradeToTls(this.deps.target.tls);
        return;
      case 'cancel':
        this.deps.cancel(action.pid, action.secret);
        this.teardown('cancel request');
        return void this.client.destroy();
      case 'verify':
        this.phase = { kind: 'connecting' };
        this.client.pause();
        return void this.authenticate(action.token, handshake.params);
      case 'fatal':
        return this.fatal(action.code, action.message);
    }
  }

  private upgradeToTls(context: SecureContext): void {
    const raw = this.client;
    raw.removeAllListeners('data');
    raw.removeAllListeners('error');
    raw.removeAllListeners('close');
    raw.removeAllListeners('drain');
    const tls = new TLSSocket(raw, { isServer: true, secureContext: context });
    this.client = tls;
    this.attachClient(tls);
  }

  private async authenticate(token: string, startup: Readonly<Record<string, string>>): Promise<void> {
    const verified = await this.deps.verifyToken(token);
    if (this.closed) return;
    if (!verified.ok) {
      this.deps.log.warn('pg.auth.rejected', { sessionId: this.id, reason: verified.error.reason, startupUser: startup.user, client: this.clientAddress });
      // Same message as PostgreSQL's, which does not say why a password was wrong.
      return this.fatal(SQLSTATE.invalidPassword, `password authentication failed for user "${startup.user ?? ''}"`);
    }
    const identity = verified.value;
    const target = this.deps.target;
    const admitted = startSession<SessionEvent>(this.deps.sessions, { id: this.id, target: target.name, protocol: 'postgres', identity, close: (reason) => this.close(reason) }, this.deps.log);
    if (!admitted.ok) return this.fatal(admitted.refusal.kind === 'recording-unavailable' ? SQLSTATE.diskFull : TOO_MANY_CONNECTIONS, admitted.refusal.message);
    const session = admitted.session;
    this.lifecycle = session;
    const params: Record<string, string> = {};
    for (const key of FORWARDED_STARTUP_PARAMS) {
      const value = startup[key];
      if (value !== undefined) params[key] = value;
    }
    const database = target.upstream.database;
    const asked = startup.database;
    // Checked after authentication, as PostgreSQL does, so that strangers do not learn the name.
    if (asked !== undefined && asked !== database) return this.fatal(SQLSTATE.invalidCatalogName, `twokey: this endpoint serves database "${database}" only, not "${asked}"`);
    let upstream: UpstreamConnection;
    try {
      upstream = await connectUpstream(
        { host: target.upstream.host, port: target.upstream.port, user: target.read.user, password: target.read.password, database, params },
        // Every handler of a read has run when it returns; the bytes live on only in a client write not yet taken.
        new ReadBuffers(() => this.client.writableLength === 0),
      );
    } catch (e) {
      this.deps.log.error('pg.upstream.connect-failed', { sessionId: this.id, target: target.name, error: e instanceof Error ? e.message : String(e) });
      const detail = e instanceof UpstreamError && e.fields?.M ? e.fields.M : undefined;
      return this.fatal(SQLSTATE.connectionFailure, `twokey: cannot connect to ${target.name}`, detail);
    }
    const masking = this.closed ? undefined : await PgSessionMasking.start(this.deps.masking, identity, database);
    if (this.closed || masking instanceof Error) {
      upstream.socket.destroy();
      if (!(masking instanceof Error)) return;
      this.deps.log.error('pg.masking.catalog-failed', { sessionId: this.id, error: String(masking) });
      return this.fatal(SQLSTATE.connectionFailure, 'twokey: masking applies to this session, but the database catalog could not be read');
    }
    const responses = this.responses;
    responses.transactionStatus = upstream.transactionStatus;
    responses.standardConformingStrings = upstream.parameters.get('standard_conforming_strings') !== 'off';
    for (const [k, v] of upstream.parameters) responses.serverParams.set(k, v);
    responses.masker = masking?.masker;
    this.phase = { kind: 'ready', live: { identity, session, upstream, judge: new StatementJudge(this.deps.classifier, this.deps.decide, target.name, identity), masking } };
    this.keyData = this.deps.register(this);
    const hello: Buffer[] = [authenticationRequest(AUTH.Ok)];
    for (const [k, v] of upstream.parameters) hello.push(parameterStatus(k, v));
    hello.push(backendKeyData(this.keyData.pid, this.keyData.secret), readyForQuery(upstream.transactionStatus));
    upstream.socket.on('data', this.onServerData);
    upstream.socket.on('error', (e) => {
      this.deps.log.warn('pg.upstream.error', { sessionId: this.id, error: e.message });
      this.fatal(SQLSTATE.connectionFailure, 'twokey: lost the connection to the database');
    });
    upstream.socket.on('close', () => this.fatal(SQLSTATE.connectionFailure, 'twokey: the database closed the connection'));
    upstream.socket.on('drain', () => this.client.resume());
    clearTimeout(this.startupTimer);
    this.client.write(Buffer.concat(hello));
    this.startRecording(session, identity, database, startup);
    this.client.resume();
  }

  /** The Postgres fast-path recorder, attached to the session's lifecycle once it is under way. */
  private startRecording(session: StartedSession<SessionEvent>, identity: Identity, database: string, startup: Readonly<Record<string, string>>): void {
    try {
      const inner = this.deps.events.sessionStart({ sessionId: this.id, target: this.deps.target.name, identity, startupUser: startup.user, database, applicationName: startup.application_name, clientAddress: this.clientAddress, at: new Date() });
      if (!inner) return;
      const observer = new DeferredObserver(inner, (e) => this.observerFailed(e));
      this.responses.observer = observer;
      this.responses.tap = new RecordingTap(observer);
      session.attach(observer);
    } catch (e) {
      this.observerFailed(e);
    }
  }

  // ---- client -> database ----

  private onReadyData(chunk: Buffer, live: Live): void {
    const observer = this.responses.observer;
    observer?.hold();
    try {
      const problem = this.clientFramer.push(chunk, this.onClientMessage);
      if (problem) this.rejectFrame(problem);
      this.flushOutgoing(live.upstream.socket);
    } finally {
      observer?.release();
    }
  }

  /** Adjacent messages of one chunk are forwarded as one slice of it (no copy, one write). */
  private forward(buf: Buffer, start: number, end: number): void {
    this.outRun.add(buf, start, end);
  }

  private flushOutgoing(upstream: Socket): void {
    this.outRun.flush();
    if (this.outgoing.length === 0 || this.closed) {
      this.outgoing.length = 0;
      return;
    }
    const data = this.outgoing.length === 1 ? (this.outgoing[0] as Buffer) : Buffer.concat(this.outgoing);
    this.outgoing.length = 0;
    if (!upstream.write(data)) this.client.pause();
  }

  private readonly onClientMessage = (buf: Buffer, start: number, end: number, code: number): void => {
    const live = this.live;
    if (!live) return;
    if (this.held) {
      this.heldMessages.push(Buffer.from(buf.subarray(start, end)));
      return;
    }
    if (this.collecting) return this.collect(buf, start, end, code);
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
        if (masking.kind === 'deny') return this.refuseCycle([errorResponse({ severity: 'ERROR', code: SQLSTATE.insufficientPrivilege, message: masking.message })]);
        if (verdict.kind === 'allow') {
          this.forward(buf, start, end);
          this.expectReply(live, code, buf, start, end, masking.kind === 'ok' ? masking.copy : undefined);
          const cycle = order.query();
          if (tap) tap.dropsOnConfirm(cycle, judged.classification.deallocates);
        } else if (verdict.kind === 'approve') {
          this.hold(live, { kind: script ? 'script' : 'statement', statement: simpleStatement(sql), decision: verdict, cls: judged.class });
        } else this.refuseCycle([errorResponse(refusal(verdict))]);
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
          return this.refuseInBatch(errorResponse({ severity: 'ERROR', code: SQLSTATE.insufficientPrivilege, message }));
        }
        if (verdict.kind === 'allow') {
          tap?.parsed(parse.name);
          this.expectReply(live, code, buf, start, end);
          return this.forwardInBatch(buf, start, end);
        }
        if (verdict.kind === 'approve' && !order.batchOpen) {
          this.collecting = { messages: [Buffer.from(buf.subarray(start, end))], decision: verdict, cls: judged.class };
          return;
        }
        if (verdict.kind === 'approve') {
          return this.refuseInBatch(errorResponse({ severity: 'ERROR', code: SQLSTATE.insufficientPrivilege, message: 'twokey: a statement that needs approval must be sent in a batch of its own (Parse ... Sync)' }));
        }
        return this.refuseInBatch(errorResponse(refusal(verdict)));
      }
      case FRONTEND.Bind:
        if (tap !== undefined && tap.tracksNames) tap.bound(buf, start, end);
        this.expectReply(live, code, buf, start, end);
        return this.forwardInBatch(buf, start, end);
      case FRONTEND.Describe:
      case FRONTEND.Execute:
        this.expectReply(live, code, buf, start, end);
        return this.forwardInBatch(buf, start, end);
      case FRONTEND.Close:
        if (tap !== undefined && tap.tracksNames) {
          const target = readTarget(bodyOf(buf, start, end));
          if (target.kind === 'S') tap.closed(target.name);
        }
        this.expectReply(live, code, buf, start, end);
        return this.forwardInBatch(buf, start, end);
      case FRONTEND.Flush:
        return this.forwardInBatch(buf, start, end);
      case FRONTEND.Sync: {
        tap?.synced();
        const sync = order.sync(this.responses.transactionStatus);
        if (!sync.forward) return sync.now && this.writeClient(sync.now);
        this.forward(buf, start, end);
        return this.expectReply(live, code, buf, start, end);
      }
      case FRONTEND.CopyData:
      case FRONTEND.CopyDone:
      case FRONTEND.CopyFail:
        // Only meaningful after the server accepted a COPY FROM STDIN, which was decided as a statement.
        return this.forward(buf, start, end);
      case FRONTEND.FunctionCall:
        return this.refuseCycle([errorResponse({ severity: 'ERROR', code: SQLSTATE.insufficientPrivilege, message: 'twokey: the fast-path function call protocol is not allowed' })]);
      case FRONTEND.Terminate:
        this.forward(buf, start, end);
        this.flushOutgoing(live.upstream.socket);
        return this.teardown('client terminated');
      default:
        return this.fatal(SQLSTATE.protocolViolation, `twokey: unexpected message type ${JSON.stringify(String.fromCharCode(code))}`);
    }
  };

  /** Classifies and decides one statement string and records it. */
  private judge(live: Live, sql: string, protocol: 'simple' | 'extended'): ReturnType<StatementJudge['judge']> {
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
    const verdict = PgSessionMasking.check(live.masking, decision, sql, () => this.deps.masking?.profileFor(live.identity));
    if (verdict.kind === 'reconnect') return void this.fatal(SQLSTATE.insufficientPrivilege, 'twokey: masking now applies to this session; reconnect');
    if (verdict.kind !== 'reload') return verdict;
    this.held = true;
    this.client.pause();
    this.heldMessages.push(Buffer.from(buf.subarray(start, end)));
    verdict.done.catch((e: unknown) => this.catalogFailed(e)).finally(() => this.release());
    return undefined;
  }

  /** Tells the result masker what the server will answer, in order; ends the session past the cap. */
  private expectReply(live: Live, code: number, buf: Buffer, start: number, end: number, copy?: CopyPlan): void {
    const masking = live.masking;
    if (masking && !masking.masker.expectClient(code, buf, start, end, copy)) this.fatal(SQLSTATE.programLimitExceeded, 'twokey: too many messages awaiting a reply');
  }

  private applySetting(live: Live, name: string, value: string): void {
    const outcome = this.settings.apply(name, value, live.judge, this.deps.target.name);
    if (outcome.kind === 'hold') return this.hold(live, outcome.held);
    this.refuseCycle(outcome.messages);
  }

  /**
   * Collects the rest of an extended batch whose statement needs approval; at its Sync the batch is
   * read into the one statement it runs (see approved-request.ts), or refused. A message that cannot
   * belong to such a batch refuses it at once.
   */
  private collect(buf: Buffer, start: number, end: number, code: number): void {
    const batch = this.collecting;
    const live = this.live;
    if (!batch || !live) return;
    if (code === FRONTEND.Terminate) {
      this.collecting = undefined;
      return this.teardown('client terminated');
    }
    batch.messages.push(Buffer.from(buf.subarray(start, end)));
    const mayBelong = code === FRONTEND.Bind || code === FRONTEND.Describe || code === FRONTEND.Execute;
    if (mayBelong && batch.messages.length < MAX_HELD_BATCH_MESSAGES) return;
    this.collecting = undefined;
    const held = heldExtendedStatement(batch.messages);
    if (held.ok) return this.hold(live, { kind: 'statement', statement: held.statement, decision: batch.decision, cls: batch.cls });
    const error = errorResponse({ severity: 'ERROR', ...held.refusal });
    // A Query or FunctionCall is a cycle of its own (the caller waits for its ReadyForQuery); anything else skips to Sync.
    if (code === FRONTEND.Sync || code === FRONTEND.Query || code === FRONTEND.FunctionCall) return this.refuseCycle([error]);
    this.answer(error);
    this.order.skippingToSync = true;
  }

  // ---- hold and run (approvals) ----

  private hold(live: Live, h: Held): void {
    this.held = true;
    this.client.pause();
    const session = this;
    const target = this.deps.target;
    void runHeld(
      h,
      {
        identity: live.identity,
        reason: this.settings.reason,
        get transactionStatus() {
          return session.responses.transactionStatus;
        },
        get closed() {
          return session.closed;
        },
        signal: this.abort.signal,
        client: this.client,
        idle: () => this.order.idle(),
        write: (bytes) => this.writeClient(bytes),
        answer: (bytes) => this.answer(bytes),
        record: (e) => live.session.record({ e: 'approval', ...e }),
        resultTransform: (statement) => live.masking?.approvedRunTransform(statement),
      },
      {
        target: target.name,
        approvals: this.deps.approvals,
        estimateBlastRadius: this.deps.estimateBlastRadius,
        // Nothing of the caller's session (search_path, DateStyle, ...) reaches the write connection: it runs
        // under the write role's defaults, which the reviewer can know. The agent's bytes are UTF-8.
        writeConnection: { host: target.upstream.host, port: target.upstream.port, user: target.write.user, password: target.write.password, database: target.upstream.database, params: WRITE_CONNECTION_PARAMS },
        maxServerMessageBytes: this.deps.limits.maxServerMessageBytes,
        schemaMayHaveChanged: () => this.deps.masking?.invalidate(target.upstream.database),
      },
    )
      .catch((e: unknown) => {
        this.deps.log.error('pg.approval.failed', { sessionId: this.id, error: String(e) });
        if (!this.closed) this.writeClient(Buffer.concat([errorResponse({ severity: 'ERROR', code: SQLSTATE.internalError, message: 'twokey: the approved statement could not be run' }), readyForQuery(this.responses.transactionStatus)]));
      })
      .finally(() => this.release());
  }

  /** Replays what arrived while a statement was held, then reads from the client again. */
  private release(): void {
    this.held = false;
    const live = this.live;
    if (!live) return;
    // If a replayed statement is held again, the messages after it queue up behind it, in order.
    this.guarded(() => {
      for (const m of this.heldMessages.splice(0)) this.onClientMessage(m, 0, m.length, m[0] as number);
    });
    this.flushOutgoing(live.upstream.socket);
    if (!this.held) this.client.resume();
  }

  // ---- answers made here, in order (ResponseOrder) ----

  private forwardInBatch(buf: Buffer, start: number, end: number): void {
    this.forward(buf, start, end);
    this.order.inBatch();
  }

  private refuseInBatch(error: Buffer): void {
    const now = this.order.refuseInBatch(error);
    if (now) this.writeClient(now);
  }

  private refuseCycle(messages: Buffer[]): void {
    const now = this.order.refuseCycle(messages, this.responses.transactionStatus);
    if (now) this.writeClient(now);
  }

  private answer(bytes: Buffer): void {
    const now = this.order.answer(bytes);
    if (now) this.writeClient(now);
  }

  // ---- database -> client ----

  private readonly onServerData = (chunk: Buffer): void => {
    if (!this.live) return;
    const responses = this.responses;
    const observer = responses.observer;
    observer?.hold();
    let problem: FramerError | undefined;
    try {
      problem = this.serverFramer.push(chunk, responses.onMessage);
      responses.flush();
    } finally {
      observer?.release();
    }
    if (problem) {
      this.deps.log.error('pg.upstream.bad-message', { sessionId: this.id, kind: problem.kind, bytes: problem.length });
      this.fatal(SQLSTATE.programLimitExceeded, 'twokey: the database sent a message over the size limit');
    }
  };

  private writeClient(bytes: Buffer, written?: () => void): void {
    if (this.closed) return;
    if (!this.client.write(bytes, written)) this.live?.upstream.socket.pause();
  }

  // ---- endings ----

  private catalogFailed(e: unknown): void {
    this.deps.log.warn('pg.masking.catalog-failed', { sessionId: this.id, error: String(e) });
  }

  private observerFailed(e: unknown): void {
    this.deps.log.error('pg.events.observer-failed', { sessionId: this.id, error: String(e) });
  }

  /** A FATAL ErrorResponse, then the connection ends (PostgreSQL does the same for fatal errors). */
  private fatal(code: string, text: string, detail?: string): void {
    if (this.closed) return;
    const fields: ErrorFields = { severity: 'FATAL', code, message: text, detail };
    this.responses.flush();
    this.client.end(errorResponse(fields));
    this.teardown(text);
  }

  private teardown(reason: string): void {
    const upstream = this.live?.upstream.socket;
    if (this.closed) return;
    this.phase = { kind: 'closed' };
    this.abort.abort();
    clearTimeout(this.startupTimer);
    this.deps.unregister(this);
    if (upstream && !upstream.destroyed) {
      upstream.removeAllListeners('data');
      upstream.end(terminateMessage());
      upstream.destroySoon();
    }
    if (!this.client.writableEnded) this.client.end();
    setTimeout(() => this.client.destroy(), 1000).unref();
    this.lifecycle?.end(reason);
  }
}

/** The ErrorResponse for a statement twokey will not run now. */
function refusal(decision: Exclude<Decision, { kind: 'allow' }>): ErrorFields {
  if (decision.kind === 'deny') {
    return { severity: 'ERROR', code: SQLSTATE.insufficientPrivilege, message: `twokey: ${decision.reason}`, detail: decision.rule ? `rule: ${decision.rule}` : undefined };
  }
  const a = decision.approval;
  return {
    severity: 'ERROR',
    code: SQLSTATE.insufficientPrivilege,
    message: `twokey: approval required (rule ${decision.rule}): ${a.min} approval(s) from ${a.groups.join(', ')}`,
    hint: 'This statement needs a reviewer’s approval before it can run.',
  };
}
