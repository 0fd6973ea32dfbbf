import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import type { Live, SessionDeps } from './session-deps';
import type { Identity } from '../../core/identity/identity';
import type { SessionEvent } from '../sessions/events';
import type { StartedSession } from '../sessions/lifecycle';
import { isLoopback } from '../net/loopback';
import { AgentSettings } from './agent-settings';
import { collectStep, heldDepsFor, runHeld, type CollectedBatch, type Held } from './approval/held-approvals';
import { DeferredObserver } from './deferred-observer';
import { AUTH, FRONTEND, SQLSTATE } from './protocol/codes';
import { framerErrorReport, MessageFramer, type FramerError } from './protocol/framer';
import { ProtocolReadError } from './protocol/reader';
import { SliceRun } from './protocol/slice-run';
import { authenticationRequest, backendKeyData, errorResponse, parameterStatus, readyForQuery, terminateMessage, type ErrorFields } from './protocol/writer';
import { RecordingTap } from './recording-tap';
import { ResponseOrder } from './response-order';
import { ResponsePath } from './response-path';
import { ClientPath } from './client-path';
import { StartupHandshake, type StartupAction } from './startup/handshake';
import { openSession } from './startup/open-session';
import { StatementJudge } from './statement-judge';
import { ReadBuffers } from './upstream/read-buffers';

export { MAX_PASSWORD_MESSAGE_BYTES } from './startup/handshake';

/** Time a client has to finish TLS, start-up and authentication. */
export const STARTUP_TIMEOUT_MS = 15_000;
/** How long a closing client has to take its last bytes before its socket is destroyed. */
const CLIENT_CLOSE_GRACE_MS = 1_000;

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
  private readonly statements: ClientPath;
  private readonly outgoing: Buffer[] = [];
  private readonly outRun = new SliceRun((slice) => this.outgoing.push(slice));
  /** While a statement waits (approval, a catalog reload), later client messages wait here, in order. */
  private held = false;
  private readonly heldMessages: Buffer[] = [];
  /** An extended-protocol batch whose Parse needs approval, collected up to its Sync (to be read, never replayed). */
  private collecting: CollectedBatch | undefined;
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
    this.statements = new ClientPath(
      {
        forward: (buf, start, end) => this.forward(buf, start, end),
        forwardInBatch: (buf, start, end) => this.forwardInBatch(buf, start, end),
        refuseInBatch: (error) => this.refuseInBatch(error),
        refuseCycle: (messages) => this.refuseCycle(messages),
        write: (bytes) => this.writeClient(bytes),
        hold: (live, held) => this.hold(live, held),
        collect: (batch) => (this.collecting = batch),
        holdUntil: (done, buf, start, end) => this.holdUntil(done, buf, start, end),
        fatal: (code, message) => this.fatal(code, message),
        terminate: (buf, start, end) => this.terminate(buf, start, end),
        currentProfile: (live) => this.deps.masking?.profileFor(live.identity),
      },
      this.order,
      this.responses,
      this.settings,
    );
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
    if (problem.kind === 'too-large') this.deps.log.warn('pg.message.too-large', { sessionId: this.id, bytes: problem.length + 1 });
    const report = framerErrorReport(problem, this.deps.limits.maxClientMessageBytes, 'client');
    this.fatal(report.sqlState, report.message);
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
    const outcome = await openSession(this.deps, {
      id: this.id,
      token,
      startup,
      clientAddress: this.clientAddress,
      // Every handler of a read has run when it returns; the bytes live on only in a client write not yet taken.
      readBuffers: new ReadBuffers(() => this.client.writableLength === 0),
      closed: () => this.closed,
      close: (reason) => this.close(reason),
      admitted: (session) => (this.lifecycle = session),
    });
    if (!outcome.ok) return outcome.fatal && this.fatal(outcome.fatal.code, outcome.fatal.message, outcome.fatal.detail);
    const { identity, session, upstream, masking } = outcome.opened;
    const target = this.deps.target;
    const database = target.upstream.database;
    const responses = this.responses;
    responses.transactionStatus = upstream.transactionStatus;
    responses.standardConformingStrings = upstream.parameters.get('standard_conforming_strings') !== 'off';
    responses.masker = masking?.masker;
    const channel = this.deps.channelOf?.(this.client.remoteAddress, this.client.remotePort);
    this.phase = { kind: 'ready', live: { identity, session, upstream, judge: new StatementJudge(this.deps.classifier, this.deps.decide, target.name, identity, channel), masking, channel } };
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
    if (this.collecting) return this.collect(live, this.collecting, buf, start, end, code);
    this.statements.onMessage(live, buf, start, end, code);
  };

  private terminate(buf: Buffer, start: number, end: number): void {
    this.forward(buf, start, end);
    const live = this.live;
    if (live) this.flushOutgoing(live.upstream.socket);
    this.teardown('client terminated');
  }

  /** Holds the client's input until `done` settles (a catalog reload), the statement first in line. */
  private holdUntil(done: Promise<void>, buf: Buffer, start: number, end: number): void {
    this.held = true;
    this.client.pause();
    this.heldMessages.push(Buffer.from(buf.subarray(start, end)));
    done.catch((e: unknown) => this.catalogFailed(e)).finally(() => this.release());
  }

  /** The rest of an extended batch held for approval (see collectStep). */
  private collect(live: Live, batch: CollectedBatch, buf: Buffer, start: number, end: number, code: number): void {
    if (code === FRONTEND.Terminate) {
      this.collecting = undefined;
      return this.teardown('client terminated');
    }
    const step = collectStep(batch, Buffer.from(buf.subarray(start, end)));
    if (step.kind === 'more') return;
    this.collecting = undefined;
    if (step.kind === 'hold') return this.hold(live, step.held);
    if (step.kind === 'refuse-cycle') return this.refuseCycle([step.error]);
    this.answer(step.error);
    this.order.skippingToSync = true;
  }

  // ---- hold and run (approvals) ----

  private hold(live: Live, h: Held): void {
    this.held = true;
    this.client.pause();
    const session = this;
    void runHeld(
      h,
      {
        identity: live.identity,
        channel: live.channel,
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
        runRecorder: this.responses.observer,
      },
      heldDepsFor(this.deps),
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
      const report = framerErrorReport(problem, this.serverFramer.maxMessageBytes, 'database');
      this.fatal(report.sqlState, report.message);
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
    setTimeout(() => this.client.destroy(), CLIENT_CLOSE_GRACE_MS).unref();
    this.lifecycle?.end(reason);
  }
}
