import { MAX_TOKEN_BYTES } from '../../../core/identity/verifier';
import { AUTH, BACKEND, FRONTEND, SQLSTATE, STARTUP } from '../protocol/codes';
import { framerErrorReport, MessageFramer, takeStartupPacket } from '../protocol/framer';
import { bodyOf, BodyReader, ProtocolReadError, readStartupParams } from '../protocol/reader';
import { authenticationRequest, int32, message } from '../protocol/writer';

/** A password message carrying the largest token the verifier accepts, with room for its header and NUL. */
export const MAX_PASSWORD_MESSAGE_BYTES = MAX_TOKEN_BYTES + 1024;

/** What the socket side does next; the handshake itself does no I/O. */
export type StartupAction =
  /** Bytes for the client. */
  | { readonly kind: 'reply'; readonly bytes: Buffer }
  /** After the `S` reply: wrap the socket in TLS; what follows arrives decrypted. */
  | { readonly kind: 'start-tls' }
  /** A CancelRequest: forward it (if its key is right) and close this connection. */
  | { readonly kind: 'cancel'; readonly pid: number; readonly secret: number }
  /** The caller's token (the password): verify it; the handshake is over, the client paused until then. */
  | { readonly kind: 'verify'; readonly token: string }
  /** A FATAL ErrorResponse, then close. */
  | { readonly kind: 'fatal'; readonly code: string; readonly message: string };

/** What the handshake needs to know of the connection it runs on. */
export interface StartupConnection {
  /** The session is already inside TLS. */
  readonly tls: boolean;
  /** The target has a certificate: an SSLRequest is answered `S`. */
  readonly tlsAvailable: boolean;
  /** The client is on this machine: it may send its token outside TLS. */
  readonly loopback: boolean;
}

/** `done`: the token was handed over; `over`: refused or cancelled, nothing more is read. */
type Phase = 'startup' | 'password' | 'done' | 'over';

/**
 * The start-up of a PostgreSQL session as a server sees it ("Start-up" in the protocol's message
 * flow): SSLRequest and GSSENCRequest, CancelRequest, the StartupMessage (protocol 3.0 only; newer
 * minors and `_pq_.` options are declined with NegotiateProtocolVersion; replication refused), then a
 * cleartext password, which is the caller's OIDC token. I/O-free: bytes in, actions out; every length
 * capped. The start-up parameters are known once the password is asked for.
 */
export class StartupHandshake {
  private phase: Phase = 'startup';
  private pendingStartup: Buffer = Buffer.alloc(0);
  private readonly passwordFramer = new MessageFramer(MAX_PASSWORD_MESSAGE_BYTES);
  private startupParams: Readonly<Record<string, string>> = {};

  get params(): Readonly<Record<string, string>> {
    return this.startupParams;
  }

  /** The actions for what the client sent; after `verify` anything more is refused, after `fatal` or `cancel` ignored. */
  push(chunk: Buffer, connection: StartupConnection): StartupAction[] {
    const actions: StartupAction[] = [];
    if (this.phase === 'over') return actions;
    try {
      if (this.phase === 'startup') this.onStartupBytes(chunk, connection, actions);
      else if (this.phase === 'password') this.onPasswordBytes(chunk, actions);
      else actions.push(fatal(SQLSTATE.protocolViolation, 'twokey: message before start-up finished'));
    } catch (e) {
      if (!(e instanceof ProtocolReadError)) throw e;
      actions.push(fatal(SQLSTATE.protocolViolation, `twokey: invalid message: ${e.message}`));
    }
    if (actions.some((a) => a.kind === 'fatal' || a.kind === 'cancel')) this.phase = 'over';
    return actions;
  }

  private onStartupBytes(chunk: Buffer, connection: StartupConnection, actions: StartupAction[]): void {
    const buffered = this.pendingStartup.length ? Buffer.concat([this.pendingStartup, chunk]) : chunk;
    const packet = takeStartupPacket(buffered);
    if (packet === 'need-more') {
      this.pendingStartup = Buffer.from(buffered);
      return;
    }
    this.pendingStartup = Buffer.alloc(0);
    if (packet === 'invalid') return void actions.push(fatal(SQLSTATE.protocolViolation, 'twokey: invalid start-up packet'));
    const r = new BodyReader(packet.body, 0, packet.body.length);
    const code = r.int32();
    if (code === STARTUP.SSLRequest) {
      // Bytes after an SSLRequest would arrive outside TLS although the client asked for it.
      if (packet.rest.length > 0) return void actions.push(fatal(SQLSTATE.protocolViolation, 'twokey: data after SSLRequest'));
      if (connection.tlsAvailable && !connection.tls) actions.push({ kind: 'reply', bytes: Buffer.from('S') }, { kind: 'start-tls' });
      else actions.push({ kind: 'reply', bytes: Buffer.from('N') });
      return;
    }
    if (code === STARTUP.GSSENCRequest) {
      actions.push({ kind: 'reply', bytes: Buffer.from('N') });
      if (packet.rest.length) this.onStartupBytes(packet.rest, connection, actions);
      return;
    }
    if (code === STARTUP.CancelRequest) return void actions.push({ kind: 'cancel', pid: r.int32(), secret: r.int32() });
    if (code >> 16 !== 3) return void actions.push(fatal(SQLSTATE.featureNotSupported, `twokey: unsupported protocol ${code >> 16}.${code & 0xffff}`));
    this.startupParams = readStartupParams(r);
    const unsupported = Object.keys(this.startupParams).filter((k) => k.startsWith('_pq_.'));
    if ((code & 0xffff) !== 0 || unsupported.length) {
      // NegotiateProtocolVersion: we speak 3.0 and none of the requested protocol options.
      actions.push({ kind: 'reply', bytes: message(BACKEND.NegotiateProtocolVersion, Buffer.concat([int32(0), int32(unsupported.length), ...unsupported.map((u) => Buffer.from(`${u}\0`))])) });
    }
    if (this.startupParams.replication !== undefined) return void actions.push(fatal(SQLSTATE.featureNotSupported, 'twokey: replication connections are not supported'));
    // The password is the caller's token: it crosses the network only inside TLS (libpq's sslmode=prefer would fall back to clear).
    if (!connection.tls && !connection.loopback) {
      return void actions.push(fatal(SQLSTATE.invalidAuthorizationSpecification, 'twokey: connections from other hosts must use TLS; connect with sslmode=require'));
    }
    this.phase = 'password';
    actions.push({ kind: 'reply', bytes: authenticationRequest(AUTH.CleartextPassword) });
    if (packet.rest.length) this.onPasswordBytes(packet.rest, actions);
  }

  private onPasswordBytes(chunk: Buffer, actions: StartupAction[]): void {
    const problem = this.passwordFramer.push(chunk, (buf, start, end, code) => {
      if (this.phase !== 'password') return void actions.push(fatal(SQLSTATE.protocolViolation, 'twokey: message before start-up finished'));
      this.phase = 'done';
      if (code !== FRONTEND.Password) return void actions.push(fatal(SQLSTATE.protocolViolation, 'twokey: expected a password message'));
      actions.push({ kind: 'verify', token: bodyOf(buf, start, end).cstring() });
    });
    if (!problem) return;
    const report = framerErrorReport(problem, MAX_PASSWORD_MESSAGE_BYTES, 'client');
    actions.push(fatal(report.sqlState, report.message));
  }
}

const fatal = (code: string, text: string): StartupAction => ({ kind: 'fatal', code, message: text });
