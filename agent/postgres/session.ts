import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import { principalKey, type Identity } from '../../core/identity/identity';
import { MAX_TOKEN_BYTES } from '../../core/identity/verifier';
import { isLoopback } from '../net/loopback';
import type { Logger } from '../../core/log';
import type { Action, Decision } from '../../core/policy/decide';
import type { ActionClass } from '../../core/policy/schema';
import type { StatementClassifier } from './classify/classifier';
import { CLASS_RANK, type Classification } from './classify/classify';
import { AUTH, BACKEND as BACKEND_CODES, FRONTEND as FRONTEND_CODES, SQLSTATE, STARTUP, type TransactionStatus } from './protocol/codes';
import { MessageFramer, takeStartupPacket, type FramerError } from './protocol/framer';
import { SliceRun } from './protocol/slice-run';
import { bodyOf as readBody, BodyReader, ProtocolReadError, readBindStatementName, readCommandTag, readErrorFields, readParse, readStartupParams, readTarget, RecentCstring } from './protocol/reader';
import {
  authenticationRequest,
  backendKeyData,
  commandComplete,
  errorResponse,
  noticeResponse,
  int32,
  message,
  parameterStatus,
  readyForQuery,
  terminateMessage,
  type ErrorFields,
} from './protocol/writer';
import { requesterOf, type ApprovalKind } from '../../core/approval/request';
import { MAX_APPROVAL_TEXT_BYTES } from '../../core/tunnel/messages';
import { newRequestId, type ApprovalClient } from '../approvals/approval-client';
import { runOnWriteConnection, type ResultTransform } from './approval/run-approved';
import { approvalHash, approvedMessages, HELD_BATCH_RULE, heldExtendedStatement, MAX_HELD_BATCH_MESSAGES, simpleStatement, type ApprovedStatement } from './approval/approved-request';
import type { PgSessionEvents, StatementEvent } from './events';
import { DeferredObserver } from './deferred-observer';
import { connectUpstream, UpstreamError, type UpstreamConnection } from './upstream/connect';
import { ReadBuffers } from './upstream/read-buffers';
import type { PgCatalog } from './masking/catalog';
import type { SessionMasking } from './masking/masking-service';
import { ResultMasker } from './masking/result-masker';
import { ByteBatch } from './protocol/byte-batch';
import { checkStatement, type StatementMasking } from './masking/statement-masking';
import type { CopyPlan } from './masking/copy-rows';

// Run through tsx, each use of an imported binding costs two getter calls and a megamorphic keyed
// load (esbuild's CommonJS interop: exports are getters); the per-message paths read these copies.
const BACKEND = BACKEND_CODES;
const FRONTEND = FRONTEND_CODES;
const bodyOf = readBody;
const bindStatementName = readBindStatementName;
const commandTag = readCommandTag;

/** Time a client has to finish TLS, start-up and authentication. */
export const STARTUP_TIMEOUT_MS = 15_000;
/** Start-up parameters passed on to the database; everything else (notably `options`) is dropped. */
const FORWARDED_STARTUP_PARAMS = ['application_name', 'DateStyle', 'TimeZone', 'IntervalStyle', 'extra_float_digits', 'search_path'];
const MAX_PREPARED_PER_SESSION = 10_000;
/** A password message carrying the largest token the verifier accepts, with room for its header and NUL. */
export const MAX_PASSWORD_MESSAGE_BYTES = MAX_TOKEN_BYTES + 1024;
export const HOLD_GRACE_SECONDS = 5;
export const MAX_WINDOW_MINUTES = 24 * 60;
const WRITE_CONNECTION_PARAMS = { application_name: 'twokey', client_encoding: 'UTF8' };

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
  readonly approvals: ApprovalClient;
  /** The planner's estimate of what a write touches, from the read credential; best effort. */
  readonly estimateBlastRadius: (sql: string) => Promise<string>;
  /** A reason to refuse new sessions (strict recording with a full spool), or undefined. */
  readonly admit?: () => string | undefined;
  /** Registers the session for CancelRequest; returns the key data the client gets. */
  readonly register: (session: ClientSession) => { pid: number; secret: number };
  readonly unregister: (session: ClientSession) => void;
  readonly cancel: (pid: number, secret: number) => void;
  /** Masking for subjects the policy masks; absent, nothing is masked. */
  readonly masking?: SessionMasking;
}

/** One request/response cycle the database owes us a ReadyForQuery for, with what to inject around it. */
interface Cycle {
  readonly before: Buffer[];
  readonly after: Buffer[];
  readonly startedAt: number;
  readonly tags: string[];
  readonly errors: string[];
  rows: number;
  /** The one name a simple Query's DEALLOCATE drops, forgotten once the server confirms it (recorded sessions). */
  deallocates: string | undefined;
}

type State = 'startup' | 'auth' | 'connecting' | 'ready' | 'closed';

/**
 * One client connection: start-up and authentication as a PostgreSQL server, then a proxy to one
 * upstream connection on the read credential, deciding every statement before it is forwarded.
 *
 * Responses stay in order although some are made here: each forwarded Query or Sync owes one
 * ReadyForQuery from the database, and a refusal is injected before (inside an extended-protocol batch)
 * or after (between cycles) the right one.
 */
export class ClientSession {
  readonly id = randomUUID();
  private state: State = 'startup';
  private client: Socket;
  private upstream: UpstreamConnection | undefined;
  private startupBuffer: Buffer = Buffer.alloc(0);
  private readonly clientFramer: MessageFramer;
  /** Before authentication a client sends one password message (the token): capped to what a token can be. */
  private readonly authFramer = new MessageFramer(MAX_PASSWORD_MESSAGE_BYTES);
  private readonly serverFramer: MessageFramer;
  private readonly startupTimer: NodeJS.Timeout;
  private identity: Identity | undefined;
  private startupParams: Record<string, string> = {};
  private keyData = { pid: 0, secret: 0 };
  private readonly pending: Cycle[] = [];
  /** The extended-protocol batch being forwarded (messages sent since the last Sync). */
  private openBatch: Cycle | undefined;
  /** After a refused extended-protocol message, everything up to Sync is discarded, as the server would. */
  private skippingToSync = false;
  private transactionStatus: TransactionStatus = 'I';
  private standardConformingStrings = true;
  /** SQL-level PREPARE names and the class of what they prepared. */
  private readonly sqlPrepared = new Map<string, ActionClass>();
  private readonly outgoing: Buffer[] = [];
  /** While a statement waits for approval, later client messages wait here, in order. */
  private held = false;
  private readonly heldMessages: Buffer[] = [];
  /** An extended-protocol batch whose Parse needs approval, collected up to its Sync (to be read, never replayed). */
  private collecting: { messages: Buffer[]; decision: Extract<Decision, { kind: 'approve' }>; cls: ActionClass } | undefined;
  private readonly drainWaiters: (() => void)[] = [];
  /** `SET twokey.reason = '...'`: kept by the agent, never sent upstream. */
  private reason: string | undefined;
  private readonly abort = new AbortController();
  private readonly outRun = new SliceRun((slice) => this.outgoing.push(slice));
  /** The part of the current server chunk not yet written to the client. */
  private readonly serverRun = new SliceRun((slice) => this.writeClient(slice));
  /** Set for the whole session when the policy masks its subject. */
  private masker: ResultMasker | undefined;
  /** The session's recording (unless the policy turns it off), handed its events once their bytes are written. */
  private observer: DeferredObserver | undefined;
  private catalog: PgCatalog | undefined;
  /** Masked sessions copy what they send into one buffer per server chunk (rewritten rows are new bytes). */
  private readonly maskedOut = new ByteBatch((bytes, written) => this.writeClient(bytes, written));
  /** After a result that could not be masked, the rest of its cycle is dropped up to ReadyForQuery. */
  private refusingResult = false;
  /** Server messages that arrived while the catalog reloads for a description it did not know. */
  private serverQueue: Buffer[] | undefined;
  private planUnknownRelations = false;
  /** The statement the catalog was last reloaded for (reloaded once per statement, not in a loop). */
  private reloadedFor: string | undefined;
  private database = '';

  constructor(
    socket: Socket,
    private readonly deps: SessionDeps,
  ) {
    this.client = socket;
    this.clientFramer = new MessageFramer(deps.limits.maxClientMessageBytes);
    this.serverFramer = new MessageFramer(deps.limits.maxServerMessageBytes);
    this.startupTimer = setTimeout(() => this.fatal(SQLSTATE.protocolViolation, 'twokey: start-up timed out'), STARTUP_TIMEOUT_MS);
    this.attachClient(socket);
  }

  get clientAddress(): string {
    return `${this.client.remoteAddress ?? '?'}:${this.client.remotePort ?? '?'}`;
  }

  /** Read through a getter so that checks after an await are not narrowed away by the compiler. */
  private get closed(): boolean {
    return this.state === 'closed';
  }

  get backendKey(): { pid: number; secret: number } {
    return this.keyData;
  }

  get upstreamKey(): { pid: number; secret: number } | undefined {
    return this.upstream?.backendKey;
  }

  /** Ends the session from outside (agent shutdown). */
  close(reason: string): void {
    this.fatal(SQLSTATE.connectionFailure, `twokey: ${reason}`);
  }

  private attachClient(socket: Socket): void {
    socket.setNoDelay(true);
    socket.on('data', this.onClientData);
    socket.on('error', () => this.teardown('client error'));
    socket.on('close', () => this.teardown('client closed'));
    socket.on('drain', () => {
      if (!this.serverQueue) this.upstream?.socket.resume();
    });
  }

  private readonly onClientData = (chunk: Buffer): void => {
    try {
      if (this.state === 'startup') this.onStartupData(chunk);
      else if (this.state === 'auth') this.pushClient(chunk, (buf, start, end, code) => this.onAuthMessage(buf, start, end, code), this.authFramer);
      else if (this.state === 'ready') this.onReadyData(chunk);
      else if (this.state === 'connecting') this.fatal(SQLSTATE.protocolViolation, 'twokey: message before start-up finished');
    } catch (e) {
      this.inputFailed(e);
    }
  };

  /** A malformed client message (or a bug while handling one) ends this session with an error, never the agent. */
  private inputFailed(e: unknown): void {
    if (e instanceof ProtocolReadError) this.fatal(SQLSTATE.protocolViolation, `twokey: invalid message: ${e.message}`);
    else {
      this.deps.log.error('pg.session.failed', { sessionId: this.id, error: String(e) });
      this.fatal(SQLSTATE.internalError, 'twokey: internal error');
    }
  }

  private pushClient(chunk: Buffer, visit: (buf: Buffer, start: number, end: number, code: number) => void, framer = this.clientFramer): void {
    const problem = framer.push(chunk, visit);
    if (problem) this.rejectFrame(problem, framer.maxMessageBytes);
  }

  private rejectFrame(problem: FramerError, limit: number): void {
    if (problem.kind === 'too-large') {
      this.deps.log.warn('pg.message.too-large', { sessionId: this.id, bytes: problem.length + 1 });
      this.fatal(SQLSTATE.programLimitExceeded, `twokey: message of ${problem.length + 1} bytes exceeds the limit of ${limit} bytes`);
    } else this.fatal(SQLSTATE.protocolViolation, `twokey: invalid message length ${problem.length}`);
  }

  // ---- start-up (PostgreSQL protocol, "Start-up" flow) ----

  private onStartupData(chunk: Buffer): void {
    this.startupBuffer = this.startupBuffer.length ? Buffer.concat([this.startupBuffer, chunk]) : chunk;
    const packet = takeStartupPacket(this.startupBuffer);
    if (packet === 'need-more') return;
    if (packet === 'invalid') return this.fatal(SQLSTATE.protocolViolation, 'twokey: invalid start-up packet');
    this.startupBuffer = Buffer.alloc(0);
    const r = new BodyReader(packet.body, 0, packet.body.length);
    const code = r.int32();
    if (code === STARTUP.SSLRequest) {
      if (packet.rest.length > 0) return this.fatal(SQLSTATE.protocolViolation, 'twokey: data after SSLRequest');
      if (this.deps.target.tls && !(this.client instanceof TLSSocket)) {
        this.client.write('S');
        this.upgradeToTls(this.deps.target.tls);
      } else this.client.write('N');
      return;
    }
    if (code === STARTUP.GSSENCRequest) {
      this.client.write('N');
      if (packet.rest.length) this.onStartupData(packet.rest);
      return;
    }
    if (code === STARTUP.CancelRequest) {
      this.deps.cancel(r.int32(), r.int32());
      this.teardown('cancel request');
      this.client.destroy();
      return;
    }
    if (code >> 16 !== 3) return this.fatal(SQLSTATE.featureNotSupported, `twokey: unsupported protocol ${code >> 16}.${code & 0xffff}`);
    this.startupParams = readStartupParams(r);
    const minor = code & 0xffff;
    const unsupported = Object.keys(this.startupParams).filter((k) => k.startsWith('_pq_.'));
    if (minor !== 0 || unsupported.length) {
      // NegotiateProtocolVersion: we speak 3.0 and none of the requested protocol options.
      this.client.write(message(BACKEND.NegotiateProtocolVersion, Buffer.concat([int32(0), int32(unsupported.length), ...unsupported.map((u) => Buffer.from(`${u}\0`))])));
    }
    if (this.startupParams.replication !== undefined) return this.fatal(SQLSTATE.featureNotSupported, 'twokey: replication connections are not supported');
    // The password is the caller's token: it crosses the network only inside TLS (libpq's sslmode=prefer would fall back to clear).
    if (!(this.client instanceof TLSSocket) && !isLoopback(this.client.remoteAddress ?? '')) {
      return this.fatal(SQLSTATE.invalidAuthorizationSpecification, 'twokey: connections from other hosts must use TLS; connect with sslmode=require');
    }
    this.state = 'auth';
    this.client.write(authenticationRequest(AUTH.CleartextPassword));
    if (packet.rest.length) this.onClientData(packet.rest);
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

  private onAuthMessage(buf: Buffer, start: number, end: number, code: number): void {
    if (code !== FRONTEND.Password) return this.fatal(SQLSTATE.protocolViolation, 'twokey: expected a password message');
    const token = bodyOf(buf, start, end).cstring();
    this.state = 'connecting';
    this.client.pause();
    void this.authenticate(token);
  }

  private async authenticate(token: string): Promise<void> {
    const verified = await this.deps.verifyToken(token);
    if (this.closed) return;
    if (!verified.ok) {
      this.deps.log.warn('pg.auth.rejected', { sessionId: this.id, reason: verified.error.reason, startupUser: this.startupParams.user, client: this.clientAddress });
      // Same message as PostgreSQL's, which does not say why a password was wrong.
      return this.fatal(SQLSTATE.invalidPassword, `password authentication failed for user "${this.startupParams.user ?? ''}"`);
    }
    this.identity = verified.value;
    const refusal = this.deps.admit?.();
    if (refusal) return this.fatal(SQLSTATE.diskFull, refusal);
    const target = this.deps.target;
    const params: Record<string, string> = {};
    for (const key of FORWARDED_STARTUP_PARAMS) {
      const value = this.startupParams[key];
      if (value !== undefined) params[key] = value;
    }
    const database = target.upstream.database;
    const asked = this.startupParams.database;
    // Checked after authentication, as PostgreSQL does, so that strangers do not learn the name.
    if (asked !== undefined && asked !== database) return this.fatal(SQLSTATE.invalidCatalogName, `twokey: this endpoint serves database "${database}" only, not "${asked}"`);
    this.database = database;
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
    if (this.closed || !(await this.startMasking(verified.value, database))) {
      upstream.socket.destroy();
      return;
    }
    this.upstream = upstream;
    this.transactionStatus = upstream.transactionStatus;
    this.standardConformingStrings = upstream.parameters.get('standard_conforming_strings') !== 'off';
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
    this.state = 'ready';
    this.client.write(Buffer.concat(hello));
    this.emit(() => {
      const observer = this.deps.events.sessionStart({
        sessionId: this.id,
        target: target.name,
        identity: verified.value,
        startupUser: this.startupParams.user,
        database,
        applicationName: this.startupParams.application_name,
        clientAddress: this.clientAddress,
        at: new Date(),
      });
      if (observer) this.observer = new DeferredObserver(observer, (e) => this.observerFailed(e));
    });
    this.client.resume();
  }

  /** Loads the catalog a masked subject's results are masked by; false when the session had to end. */
  private async startMasking(identity: Identity, database: string): Promise<boolean> {
    const masking = this.deps.masking;
    const profile = masking?.profileFor(identity);
    if (!masking || !profile) return true;
    const catalog = masking.catalogFor(database);
    try {
      if (!catalog.ready) await catalog.refresh();
    } catch (e) {
      this.deps.log.error('pg.masking.catalog-failed', { sessionId: this.id, error: String(e) });
      this.fatal(SQLSTATE.connectionFailure, 'twokey: masking applies to this session, but the database catalog could not be read');
      return false;
    }
    catalog.keepFresh();
    this.catalog = catalog;
    this.masker = new ResultMasker(profile, catalog);
    return !this.closed;
  }

  /**
   * Masking's say on a statement the policy allows: strict-mode refusals and COPY plans. Undefined
   * when the statement is held while the catalog reloads (it is replayed afterwards) or the session ended.
   */
  private checkMasking(decision: Decision, sql: string, buf: Buffer, start: number, end: number): StatementMasking | undefined {
    if (decision.kind === 'deny') return { kind: 'ok', copy: undefined };
    const masker = this.masker;
    const catalog = this.catalog;
    if (!masker || !catalog) {
      if (decision.masks.length === 0) return { kind: 'ok', copy: undefined };
      // Masks that did not apply when the session started: its results were never planned for masking.
      this.fatal(SQLSTATE.insufficientPrivilege, 'twokey: masking now applies to this session; reconnect');
      return undefined;
    }
    if (decision.masks.length) masker.profile = this.deps.masking?.profileFor(this.identity as Identity) ?? masker.profile;
    if (!this.standardConformingStrings && masker.profile.masksColumns) {
      return { kind: 'deny', message: 'twokey: masking needs standard_conforming_strings on (the agent reads string literals as the server does only then); reconnect' };
    }
    catalog.keepFresh();
    const mayReload = this.reloadedFor !== sql;
    // A catalog invalidated by DDL is reloaded before it decides anything (once per statement).
    const verdict = !catalog.ready && mayReload ? ({ kind: 'reload' } as const) : checkStatement(sql, masker.profile, catalog, mayReload, (name) => masker.knowsPrepared(name));
    if (verdict.kind !== 'reload') {
      this.reloadedFor = undefined;
      return verdict;
    }
    this.reloadedFor = sql;
    this.held = true;
    this.client.pause();
    this.heldMessages.push(Buffer.from(buf.subarray(start, end)));
    catalog
      .refresh()
      .catch((e: unknown) => this.deps.log.warn('pg.masking.catalog-failed', { sessionId: this.id, error: String(e) }))
      .finally(() => this.release());
    return undefined;
  }

  /** Tells the result masker what the server will answer, in order; ends the session past the cap. */
  private expectReply(code: number, buf: Buffer, start: number, end: number, copy?: CopyPlan): void {
    if (this.masker && !this.masker.expectClient(code, buf, start, end, copy)) {
      this.fatal(SQLSTATE.programLimitExceeded, 'twokey: too many messages awaiting a reply');
    }
  }

  // ---- client -> database ----

  private onReadyData(chunk: Buffer): void {
    const upstream = this.upstream?.socket;
    if (!upstream) return;
    const observer = this.observer;
    observer?.hold();
    try {
      this.pushClient(chunk, (buf, start, end, code) => this.onClientMessage(buf, start, end, code));
      this.flushOutgoing(upstream);
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
    if (this.outgoing.length === 0 || this.state !== 'ready') {
      this.outgoing.length = 0;
      return;
    }
    const data = this.outgoing.length === 1 ? (this.outgoing[0] as Buffer) : Buffer.concat(this.outgoing);
    this.outgoing.length = 0;
    if (!upstream.write(data)) this.client.pause();
  }

  private onClientMessage(buf: Buffer, start: number, end: number, code: number): void {
    if (this.state !== 'ready') return;
    if (this.held) {
      this.heldMessages.push(Buffer.from(buf.subarray(start, end)));
      return;
    }
    if (this.collecting) return this.collect(buf, start, end, code);
    if (this.skippingToSync && code !== FRONTEND.Sync && code !== FRONTEND.Terminate) return;
    switch (code) {
      case FRONTEND.Query: {
        const sql = bodyOf(buf, start, end).cstring();
        const setting = twokeySetting(sql);
        if (setting) return this.applySetting(setting.name, setting.value);
        const script = this.scriptNext;
        this.scriptNext = false;
        const verdict = this.judge(sql, 'simple');
        const masking = this.checkMasking(verdict, sql, buf, start, end);
        if (!masking) return;
        if (masking.kind === 'deny') return this.refuseCycle([errorResponse({ severity: 'ERROR', code: SQLSTATE.insufficientPrivilege, message: masking.message })]);
        if (verdict.kind === 'allow') {
          this.forward(buf, start, end);
          this.expectReply(code, buf, start, end, masking.kind === 'ok' ? masking.copy : undefined);
          const cycle = newCycle();
          const dropped = this.judgedDeallocates;
          if (this.namedStatements.size > 0 && dropped !== 'all' && dropped.length === 1) cycle.deallocates = dropped[0];
          this.pending.push(cycle);
        } else if (verdict.kind === 'approve') {
          this.hold({ kind: script ? 'script' : 'statement', statement: simpleStatement(sql), decision: verdict, cls: this.lastClass });
        } else this.refuseCycle([errorResponse(refusal(verdict))]);
        return;
      }
      case FRONTEND.Parse: {
        const parse = readParse(bodyOf(buf, start, end));
        const verdict = this.judge(parse.query, 'extended');
        const masking = this.checkMasking(verdict, parse.query, buf, start, end);
        if (!masking) return;
        if (masking.kind === 'deny' || (masking.kind === 'ok' && masking.copy?.columns?.some((c) => c))) {
          const message = masking.kind === 'deny' ? masking.message : 'twokey: COPY of masked columns must use the simple query protocol';
          return this.refuseInBatch(errorResponse({ severity: 'ERROR', code: SQLSTATE.insufficientPrivilege, message }));
        }
        if (verdict.kind === 'allow') {
          this.rememberNamedStatement(parse.name);
          this.expectReply(code, buf, start, end);
          return this.forwardInBatch(buf, start, end);
        }
        if (verdict.kind === 'approve' && !this.openBatch) {
          this.collecting = { messages: [Buffer.from(buf.subarray(start, end))], decision: verdict, cls: this.lastClass };
          return;
        }
        if (verdict.kind === 'approve') {
          return this.refuseInBatch(errorResponse({ severity: 'ERROR', code: SQLSTATE.featureNotSupported, message: HELD_BATCH_RULE, detail: 'other messages came before its Parse in the batch' }));
        }
        return this.refuseInBatch(errorResponse(refusal(verdict)));
      }
      case FRONTEND.Bind:
        if (this.namedStatements.size > 0) this.recordExecution(buf, start, end);
        this.expectReply(code, buf, start, end);
        return this.forwardInBatch(buf, start, end);
      case FRONTEND.Describe:
      case FRONTEND.Execute:
        this.expectReply(code, buf, start, end);
        return this.forwardInBatch(buf, start, end);
      case FRONTEND.Close:
        if (this.namedStatements.size > 0) {
          const target = readTarget(bodyOf(buf, start, end));
          if (target.kind === 'S') this.forgetNamedStatement(target.name);
        }
        this.expectReply(code, buf, start, end);
        return this.forwardInBatch(buf, start, end);
      case FRONTEND.Flush:
        return this.forwardInBatch(buf, start, end);
      case FRONTEND.Sync:
        if (this.parsedInBatch.size > 0) this.parsedInBatch.clear();
        if (this.skippingToSync) {
          this.skippingToSync = false;
          if (!this.openBatch) return this.refuseCycle([]);
        }
        this.forward(buf, start, end);
        this.expectReply(code, buf, start, end);
        if (!this.openBatch) this.pending.push(newCycle());
        this.openBatch = undefined;
        return;
      case FRONTEND.CopyData:
      case FRONTEND.CopyDone:
      case FRONTEND.CopyFail:
        // Only meaningful after the server accepted a COPY FROM STDIN, which was decided as a statement.
        return this.forward(buf, start, end);
      case FRONTEND.FunctionCall:
        return this.refuseCycle([
          errorResponse({ severity: 'ERROR', code: SQLSTATE.insufficientPrivilege, message: 'twokey: the fast-path function call protocol is not allowed' }),
        ]);
      case FRONTEND.Terminate:
        this.forward(buf, start, end);
        if (this.upstream) this.flushOutgoing(this.upstream.socket);
        return this.teardown('client terminated');
      default:
        return this.fatal(SQLSTATE.protocolViolation, `twokey: unexpected message type ${JSON.stringify(String.fromCharCode(code))}`);
    }
  }

  private lastClass: ActionClass = 'unknown';
  /** What the statement judged last deallocates (see `forgetDeallocated`). */
  private judgedDeallocates: readonly string[] | 'all' = [];
  /** The statement event of the last statement judged (recorded sessions only). */
  private lastStatement: StatementEvent | undefined;
  /**
   * Named prepared statements (recorded sessions only): each later Bind of one is recorded as its
   * statement again, so that every execution shows in the recording, not only the Parse.
   */
  private readonly namedStatements = new Map<string, StatementEvent>();
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

  private rememberNamedStatement(name: string): void {
    if (!this.observer || !this.lastStatement || name === '') return;
    this.parsedInBatch.add(name);
    if (this.namedStatements.size >= MAX_PREPARED_PER_SESSION && !this.namedStatements.has(name)) return;
    this.namedStatements.set(name, this.lastStatement);
    this.lastExecutedName = undefined;
  }

  private forgetNamedStatement(name: string): void {
    this.namedStatements.delete(name);
    this.lastExecutedName = undefined;
  }

  /**
   * A named statement dropped by SQL is forgotten when the server confirms it, not when the statement
   * is judged: one that failed (or never ran after an error before it) leaves the name prepared, and a
   * Bind of a name forgotten too early would run unrecorded. `DEALLOCATE ALL` and `DISCARD ALL` say
   * what they dropped; a bare `DEALLOCATE` tag only in a simple Query that names one statement.
   */
  private forgetDeallocated(cycle: Cycle, tag: string): void {
    if (tag === 'DEALLOCATE ALL' || tag === 'DISCARD ALL') {
      this.namedStatements.clear();
      this.lastExecutedName = undefined;
    } else if (tag === 'DEALLOCATE' && cycle.deallocates !== undefined) this.forgetNamedStatement(cycle.deallocates);
  }

  private recordExecution(buf: Buffer, start: number, end: number): void {
    const name = bindStatementName(buf, start, end, this.recentStatementName);
    if (this.parsedInBatch.size > 0 && this.parsedInBatch.delete(name)) return;
    if (this.lastExecutedName !== name) {
      this.lastExecutedName = name;
      this.lastExecutedStatement = this.namedStatements.get(name);
    }
    if (this.lastExecutedStatement) this.observer?.statement(this.lastExecutedStatement);
  }

  /** `SET twokey.script = on`: the next Query is a whole script (`twokey exec`), approved and run as one. */
  private scriptNext = false;

  /** `SET twokey.<name>`: the agent's own session settings, answered here and never sent upstream. */
  private applySetting(name: string, value: string): void {
    if (name === 'reason') {
      this.reason = value || undefined;
      return this.refuseCycle([commandComplete('SET')]);
    }
    if (name === 'script') {
      this.scriptNext = value === 'on';
      return this.refuseCycle([commandComplete('SET')]);
    }
    if (name === 'request_access') {
      const minutes = Number(value);
      const identity = this.identity as Identity;
      const decision = this.deps.decide(identity, this.deps.target.name, { class: 'write' });
      if (!Number.isInteger(minutes) || minutes < 1 || minutes > MAX_WINDOW_MINUTES) {
        return this.refuseCycle([errorResponse({ severity: 'ERROR', code: SQLSTATE.featureNotSupported, message: `twokey: a write window is 1 to ${MAX_WINDOW_MINUTES} minutes` })]);
      }
      if (decision.kind !== 'approve') {
        const message = decision.kind === 'allow' ? 'twokey: writes on this target need no approval' : `twokey: ${decision.reason}`;
        return this.refuseCycle([errorResponse({ severity: 'ERROR', code: SQLSTATE.insufficientPrivilege, message })]);
      }
      const text = `write access to ${this.deps.target.name} for ${minutes} minute(s)`;
      return this.hold({ kind: 'window', statement: simpleStatement(text), decision, cls: 'write', windowMinutes: minutes });
    }
    return this.refuseCycle([errorResponse({ severity: 'ERROR', code: SQLSTATE.featureNotSupported, message: `twokey: unknown setting twokey.${name}` })]);
  }

  /**
   * Collects the rest of an extended batch whose statement needs approval; at its Sync the batch is
   * read into the one statement it runs (see approved-request.ts), or refused. A message that cannot
   * belong to such a batch refuses it at once.
   */
  private collect(buf: Buffer, start: number, end: number, code: number): void {
    const batch = this.collecting;
    if (!batch) return;
    if (code === FRONTEND.Terminate) {
      this.collecting = undefined;
      return this.teardown('client terminated');
    }
    batch.messages.push(Buffer.from(buf.subarray(start, end)));
    const mayBelong = code === FRONTEND.Bind || code === FRONTEND.Describe || code === FRONTEND.Execute;
    if (mayBelong && batch.messages.length < MAX_HELD_BATCH_MESSAGES) return;
    this.collecting = undefined;
    const held = heldExtendedStatement(batch.messages);
    if (held.ok) return this.hold({ kind: 'statement', statement: held.statement, decision: batch.decision, cls: batch.cls });
    const error = errorResponse({ severity: 'ERROR', ...held.refusal });
    // A Query or FunctionCall is a cycle of its own (the caller waits for its ReadyForQuery); anything else skips to Sync.
    if (code === FRONTEND.Sync || code === FRONTEND.Query || code === FRONTEND.FunctionCall) return this.refuseCycle([error]);
    this.inject(error);
    this.skippingToSync = true;
  }

  // ---- hold and run (approvals) ----

  private hold(h: Held): void {
    this.held = true;
    this.client.pause();
    void this.runHeld(h)
      .catch((e: unknown) => {
        this.deps.log.error('pg.approval.failed', { sessionId: this.id, error: String(e) });
        if (!this.closed) this.writeClient(Buffer.concat([errorResponse({ severity: 'ERROR', code: SQLSTATE.internalError, message: 'twokey: the approved statement could not be run' }), readyForQuery(this.transactionStatus)]));
      })
      .finally(() => this.release());
  }

  private drained(): Promise<void> {
    if (this.pending.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private async runHeld(h: Held): Promise<void> {
    const identity = this.identity as Identity;
    const target = this.deps.target;
    const approvals = this.deps.approvals;
    const sha256 = approvalHash(h.kind, h.statement);
    const text = h.statement.text;
    const params = h.statement.protocol === 'extended' ? h.statement.params : undefined;
    const finish = async (messages: Buffer[]): Promise<void> => {
      await this.drained();
      if (!this.closed) this.writeClient(Buffer.concat([...messages, readyForQuery(this.transactionStatus)]));
    };
    const refuse = (message: string, hint?: string): Promise<void> =>
      finish([errorResponse({ severity: 'ERROR', code: SQLSTATE.insufficientPrivilege, message, hint })]);

    if (this.transactionStatus !== 'I' && h.kind === 'statement') {
      return refuse('twokey: a write inside a transaction block cannot wait for approval', 'Submit the whole script with `twokey exec --target ' + target.name + ' -f script.sql`; it runs as one transaction once approved.');
    }
    const principal = principalKey(identity);
    if (h.kind !== 'window' && approvals.windowOpen(principal, target.name)) {
      return this.runApproved(h, noticeResponse({ code: '00000', message: `twokey: running on the write credential inside your approved write window` }));
    }
    if (h.kind !== 'window' && approvals.takeOneTimeGrant(principal, target.name, sha256)) {
      return this.runApproved(h, noticeResponse({ code: '00000', message: 'twokey: running once under the approval given earlier for this exact statement' }));
    }
    const approval = h.decision.approval;
    if (approval.requireReason && !this.reason) {
      return refuse('twokey: this statement needs a reason before it can be sent for approval', "Run SET twokey.reason = 'why' first.");
    }
    if (Buffer.byteLength(text) > MAX_APPROVAL_TEXT_BYTES) return refuse(`twokey: statements over ${MAX_APPROVAL_TEXT_BYTES} bytes cannot be sent for approval; use twokey exec`);
    const requestId = newRequestId();
    const blastRadius = h.kind === 'statement' ? await this.deps.estimateBlastRadius(text).catch(() => 'unknown') : undefined;
    const submitted = await approvals.submit({
      requestId,
      kind: h.kind,
      windowMinutes: h.windowMinutes,
      target: target.name,
      protocol: 'postgres',
      text,
      params,
      sha256,
      class: h.cls,
      rule: h.decision.rule,
      requester: requesterOf(identity),
      reason: this.reason,
      blastRadius,
      approval: { groups: approval.groups, min: approval.min, timeoutSeconds: approval.timeoutSeconds },
    });
    if (!submitted.ok) return refuse(`twokey: approval required but unavailable: ${submitted.reason}`);
    this.inject(
      noticeResponse({
        code: '00000',
        message: `twokey: approval required, request ${requestId}, sent to ${approval.groups.join(', ')}, waiting up to ${approval.timeoutSeconds}s`,
      }),
    );
    this.emitApproval(requestId, 'requested', []);
    // A little longer than the request itself, so that the control plane's expiry arrives as a decision.
    const decision = await approvals.waitForDecision(requestId, (approval.timeoutSeconds + HOLD_GRACE_SECONDS) * 1000, this.abort.signal);
    if (this.closed) return;
    if (!decision) {
      return refuse(`twokey: no decision on request ${requestId} within ${approval.timeoutSeconds}s`, 'The request stays open: once approved, sending the identical statement runs it once.');
    }
    this.emitApproval(requestId, decision.outcome, decision.decidedBy);
    if (decision.outcome !== 'approved') {
      const who = decision.decidedBy.length ? ` by ${decision.decidedBy.join(', ')}` : '';
      return refuse(`twokey: request ${requestId} ${decision.outcome}${who}${decision.comment ? `: ${decision.comment}` : ''}`);
    }
    if (h.kind === 'window') {
      return finish([
        noticeResponse({ code: '00000', message: `twokey: request ${requestId} approved by ${decision.decidedBy.join(', ')}; writes on ${target.name} run on the write credential until ${decision.validUntil}` }),
        commandComplete('SET'),
      ]);
    }
    return this.runApproved(h, noticeResponse({ code: '00000', message: `twokey: request ${requestId} approved by ${decision.decidedBy.join(', ')}; running it once on the write credential` }));
  }

  private async runApproved(h: Held, notice: Buffer): Promise<void> {
    await this.drained();
    if (this.closed) return;
    this.writeClient(notice);
    const target = this.deps.target;
    await runOnWriteConnection(
      {
        host: target.upstream.host,
        port: target.upstream.port,
        user: target.write.user,
        password: target.write.password,
        database: target.upstream.database,
        // Nothing of the caller's session (search_path, DateStyle, ...) reaches the write connection: it runs
        // under the write role's defaults, which the reviewer can know. The agent's bytes are UTF-8.
        params: WRITE_CONNECTION_PARAMS,
      },
      h.statement,
      { write: (bytes) => this.client.write(bytes), onDrain: (resume) => this.client.once('drain', resume), transform: this.approvedRunMasking(h.statement) },
      this.deps.limits.maxServerMessageBytes,
    );
    // Approved DDL may change what a column is (or a view reads): masking reads the catalog again.
    if (h.cls === 'ddl' || h.cls === 'unknown' || h.kind === 'script') this.deps.masking?.invalidate(this.database);
    if (!this.closed) this.writeClient(readyForQuery(this.transactionStatus));
  }

  /** Results of an approved run are masked like any other (with a masker of their own: another connection). */
  private approvedRunMasking(statement: ApprovedStatement): ResultTransform | undefined {
    if (!this.masker || !this.catalog) return undefined;
    const masker = new ResultMasker(this.masker.profile, this.catalog);
    const messages = approvedMessages(statement);
    new MessageFramer(messages.length + 1).push(messages, (buf, start, end, code) => {
      masker.expectClient(code, buf, start, end);
    });
    let refusing = false;
    return (buf, start, end, code) => {
      if (refusing) return null;
      const outcome = masker.handle(buf, start, end, code, true);
      if (outcome.kind === 'refuse') {
        refusing = true;
        return errorResponse({ severity: 'ERROR', code: SQLSTATE.insufficientPrivilege, message: outcome.reason });
      }
      return outcome.kind === 'written' ? outcome.bytes : undefined;
    };
  }

  private emitApproval(requestId: string, outcome: string, reviewers: readonly string[]): void {
    this.observer?.approval({ requestId, outcome, reviewers });
  }

  /** Replays what arrived while a statement was held, then reads from the client again. */
  private release(): void {
    this.held = false;
    if (this.closed) return;
    // If a replayed statement is held again, the messages after it queue up behind it, in order.
    try {
      for (const m of this.heldMessages.splice(0)) this.onClientMessage(m, 0, m.length, m[0] as number);
    } catch (e) {
      this.inputFailed(e);
    }
    if (this.upstream) this.flushOutgoing(this.upstream.socket);
    if (!this.held) this.client.resume();
  }

  private forwardInBatch(buf: Buffer, start: number, end: number): void {
    this.forward(buf, start, end);
    if (!this.openBatch) {
      this.openBatch = newCycle();
      this.pending.push(this.openBatch);
    }
  }

  /** A refused extended-protocol message: the error goes where the server would have put it, then skip to Sync. */
  private refuseInBatch(error: Buffer): void {
    if (this.openBatch) this.openBatch.before.push(error);
    else this.inject(error);
    this.skippingToSync = true;
  }

  /** A whole cycle answered here: the messages and then ReadyForQuery, after everything owed before it. */
  private refuseCycle(messages: Buffer[]): void {
    this.inject(Buffer.concat([...messages, readyForQuery(this.transactionStatus)]));
  }

  private inject(bytes: Buffer): void {
    const last = this.pending[this.pending.length - 1];
    if (last) last.after.push(bytes);
    else this.writeClient(bytes);
  }

  /** Classifies and decides one statement string; reports it; returns the decision. */
  private judge(sql: string, protocol: 'simple' | 'extended'): Decision {
    const identity = this.identity as Identity;
    const classification = this.deps.classifier.classify(sql, this.standardConformingStrings);
    const cls = this.effectiveClass(classification);
    this.lastClass = cls;
    const decision = this.deps.decide(identity, this.deps.target.name, {
      class: cls,
      statements: classification.statements,
      tables: classification.tables,
      functions: classification.functions,
    });
    this.judgedDeallocates = classification.deallocates;
    if (decision.kind === 'allow') this.track(classification);
    if (this.observer) {
      this.lastStatement = {
        // A masked subject's recording holds what the detectors leave of the statement's literals.
        text: this.masker ? this.masker.profile.scanner.scanString(sql) : sql,
        protocol,
        class: cls,
        decision: decision.kind,
        rule: decision.rule,
        reason: decision.kind === 'deny' ? decision.reason : classification.reason,
      };
      this.observer.statement(this.lastStatement);
    }
    return decision;
  }

  /** EXECUTE takes the class its statement was prepared with; an unknown name is `unknown`. */
  private effectiveClass(c: Classification): ActionClass {
    let cls = c.class;
    // The common case (no EXECUTE) allocates nothing: this runs for every statement.
    if (c.executes.length === 0) return cls;
    const preparedHere = new Map(c.prepares.map((p) => [p.name, p.class]));
    for (const name of c.executes) {
      const prepared = preparedHere.get(name) ?? this.sqlPrepared.get(name) ?? 'unknown';
      if (CLASS_RANK[prepared] > CLASS_RANK[cls]) cls = prepared;
    }
    return cls;
  }

  private track(c: Classification): void {
    if (c.deallocates === 'all') this.sqlPrepared.clear();
    else for (const name of c.deallocates) this.sqlPrepared.delete(name);
    for (const p of c.prepares) {
      if (this.sqlPrepared.size >= MAX_PREPARED_PER_SESSION) break;
      this.sqlPrepared.set(p.name, p.class);
    }
  }

  // ---- database -> client ----


  private readonly onServerData = (chunk: Buffer): void => {
    if (this.state !== 'ready') return;
    const observer = this.observer;
    observer?.hold();
    let problem: FramerError | undefined;
    try {
      problem = this.serverFramer.push(chunk, this.onServerMessage);
      this.flushRun();
    } finally {
      observer?.release();
    }
    if (problem) {
      this.deps.log.error('pg.upstream.bad-message', { sessionId: this.id, kind: problem.kind, bytes: problem.length });
      this.fatal(SQLSTATE.programLimitExceeded, 'twokey: the database sent a message over the size limit');
    }
  };

  private readonly onServerMessage = (original: Buffer, originalStart: number, originalEnd: number, code: number): void => {
    let buf = original;
    let start = originalStart;
    let end = originalEnd;
    if (this.masker) {
      if (this.serverQueue) {
        this.serverQueue.push(Buffer.from(buf.subarray(start, end)));
        return;
      }
      const outcome = this.masker.handle(buf, start, end, code, this.planUnknownRelations || this.refusingResult, this.refusingResult ? undefined : this.maskedOut);
      if (outcome.kind === 'reload') return this.pauseForCatalog(buf, start, end);
      if (this.refusingResult && code !== BACKEND.ReadyForQuery) return;
      this.refusingResult = false;
      if (outcome.kind === 'refuse') {
        this.refusingResult = code !== BACKEND.ReadyForQuery;
        this.pending[0]?.errors.push(outcome.reason);
        this.appendRun(errorResponse({ severity: 'ERROR', code: SQLSTATE.insufficientPrivilege, message: outcome.reason }), 0, undefined);
        return;
      }
      if (outcome.kind === 'written') {
        buf = outcome.bytes;
        start = 0;
        end = buf.length;
      } else if (outcome.kind === 'emitted') {
        // Only DataRows are rewritten in place: count and record them; they are already in the output.
        if (this.pending[0]) this.pending[0].rows++;
        this.observer?.dataRow(outcome.buf, outcome.start, outcome.end);
        return;
      }
    }
    const cycle = this.pending[0];
    switch (code) {
      case BACKEND.DataRow:
        if (cycle) cycle.rows++;
        this.observer?.dataRow(buf, start, end);
        break;
      case BACKEND.CommandComplete:
        if (cycle && this.observer) {
          const tag = commandTag(buf, start, end, this.recentCommandTag);
          cycle.tags.push(tag);
          if (this.namedStatements.size > 0) this.forgetDeallocated(cycle, tag);
        }
        break;
      case BACKEND.ErrorResponse:
      case BACKEND.NoticeResponse: {
        const fields = readErrorFields(bodyOf(buf, start, end));
        if (code === BACKEND.ErrorResponse) cycle?.errors.push(fields.M ?? '');
        this.observer?.serverMessage({ kind: code === BACKEND.ErrorResponse ? 'error' : 'notice', fields });
        break;
      }
      case BACKEND.ParameterStatus: {
        const r = bodyOf(buf, start, end);
        const name = r.cstring();
        const value = r.cstring();
        if (name === 'standard_conforming_strings') this.standardConformingStrings = value !== 'off';
        break;
      }
      case BACKEND.ReadyForQuery: {
        this.transactionStatus = String.fromCharCode(buf[start + 5] as number) as TransactionStatus;
        const done = this.pending.shift();
        if (this.pending.length === 0) for (const w of this.drainWaiters.splice(0)) w();
        if (!done) break;
        if (done.before.length) {
          this.flushRun();
          this.writeClient(Buffer.concat(done.before));
        }
        this.appendRun(buf, start, end);
        if (done.after.length) {
          this.flushRun();
          this.writeClient(Buffer.concat(done.after));
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
    this.appendRun(buf, start, end);
  };

  private appendRun(buf: Buffer, start: number, end: number = buf.length): void {
    if (this.masker) this.maskedOut.add(buf, start, end);
    else this.serverRun.add(buf, start, end);
  }

  private flushRun(): void {
    this.serverRun.flush();
    this.maskedOut.flush();
  }

  /**
   * A description names a relation the catalog does not know (created since it was read): the stream
   * pauses, the catalog reloads, and the queued messages go on in order.
   */
  private pauseForCatalog(buf: Buffer, start: number, end: number): void {
    this.serverQueue = [Buffer.from(buf.subarray(start, end))];
    this.upstream?.socket.pause();
    this.masker
      ?.reloadCatalog()
      .catch((e: unknown) => this.deps.log.warn('pg.masking.catalog-failed', { sessionId: this.id, error: String(e) }))
      .finally(() => {
        const queue = this.serverQueue ?? [];
        this.serverQueue = undefined;
        if (this.closed) return;
        // What the reload still cannot name is planned as unknown (masked in full), not reloaded again.
        this.planUnknownRelations = true;
        const first = queue.shift();
        if (first) this.onServerMessage(first, 0, first.length, first[0] as number);
        this.planUnknownRelations = false;
        for (const m of queue) this.onServerMessage(m, 0, m.length, m[0] as number);
        this.flushRun();
        if (!this.serverQueue) this.upstream?.socket.resume();
      });
  }

  private writeClient(bytes: Buffer, written?: () => void): void {
    if (this.state === 'closed') return;
    if (!this.client.write(bytes, written)) this.upstream?.socket.pause();
  }

  // ---- endings ----

  private emit(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.observerFailed(e);
    }
  }

  private observerFailed(e: unknown): void {
    this.deps.log.error('pg.events.observer-failed', { sessionId: this.id, error: String(e) });
  }

  /** A FATAL ErrorResponse, then the connection ends (PostgreSQL does the same for fatal errors). */
  private fatal(code: string, text: string, detail?: string): void {
    if (this.state === 'closed') return;
    const fields: ErrorFields = { severity: 'FATAL', code, message: text, detail };
    this.flushRun();
    this.client.end(errorResponse(fields));
    this.teardown(text);
  }

  private teardown(reason: string): void {
    if (this.state === 'closed') return;
    const wasReady = this.state === 'ready';
    this.state = 'closed';
    this.abort.abort();
    clearTimeout(this.startupTimer);
    this.deps.unregister(this);
    const upstream = this.upstream?.socket;
    if (upstream && !upstream.destroyed) {
      upstream.removeAllListeners('data');
      upstream.end(terminateMessage());
      upstream.destroySoon();
    }
    if (!this.client.writableEnded) this.client.end();
    setTimeout(() => this.client.destroy(), 1000).unref();
    const observer = this.observer;
    if (wasReady && observer) this.emit(() => observer.sessionEnd(reason));
  }
}

interface Held {
  readonly kind: ApprovalKind;
  readonly windowMinutes?: number;
  /** What the reviewer reads and, once approved, what the agent builds the write connection's messages from (a window's text is never run). */
  readonly statement: ApprovedStatement;
  readonly decision: Extract<Decision, { kind: 'approve' }>;
  readonly cls: ActionClass;
}

/** `SET [SESSION|LOCAL] twokey.<name> = '...'` (or TO, or an unquoted word): the agent's own settings. */
export function twokeySetting(sql: string): { name: string; value: string } | undefined {
  const m = /^\s*set\s+(?:session\s+|local\s+)?twokey\.([a-z_]+)\s*(?:=|to)\s*(?:'((?:[^']|'')*)'|([A-Za-z0-9_]+))\s*;?\s*$/i.exec(sql);
  if (!m) return undefined;
  return { name: (m[1] ?? '').toLowerCase(), value: m[2] !== undefined ? m[2].replace(/''/g, "'") : (m[3] ?? '') };
}

function newCycle(): Cycle {
  return { before: [], after: [], startedAt: Date.now(), tags: [], errors: [], rows: 0, deallocates: undefined };
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
