import { randomUUID } from 'node:crypto';
import type { Client, ClientInfo, Connection, PseudoTtyInfo, ServerChannel, Session } from 'ssh2';
import type { Identity } from '../../core/identity/identity';
import { principalKey } from '../../core/identity/identity';
import type { AgentContext } from '../agent';
import type { SshTargetConfig } from '../config';
import { JsonSessionRecorder } from '../recording/session-recorder';
import { TerminalRecording } from '../recording/terminal-recorder';
import { startSession, type StartedSession } from '../sessions/lifecycle';
import { sessionMaskingFor, type SessionMaskingHandle } from '../sessions/session-masking';
import { CallerAuthenticator, type AuthMethod, type RegisteredKeyLookup } from './caller-auth';
import { TerminalSessionRecorder, type SshEvent } from './events';
import { openForward } from './forward';
import { REFUSED_EXIT_STATUS, SessionChannel, type ChannelHost, type TerminalTap } from './session-channel';
import { connectUpstream, UpstreamError, type UpstreamLogin } from './upstream';

/** Channels one caller connection may hold open at once. */
export const MAX_CHANNELS_PER_CONNECTION = 16;

export interface ConnectionDeps {
  readonly target: SshTargetConfig;
  readonly agent: AgentContext;
  readonly keys: RegisteredKeyLookup | undefined;
  /** Called once the caller has authenticated (the listener stops counting it as a pending handshake). */
  onAuthenticated(): void;
}

type Live = { readonly session: StartedSession<SshEvent>; readonly masking: SessionMaskingHandle } | { readonly refusal: string };

/**
 * One caller's SSH connection: authenticated (token or registered key), admitted as a session, its
 * channels served. The read login's upstream connection is opened on first use and shared by the
 * channels; a write login's is opened per approved action.
 */
export class CallerConnection {
  private live: Live | undefined;
  private readUpstream: Promise<Client> | undefined;
  private readonly abort = new AbortController();
  private channels = 0;
  private terminalRecording: TerminalRecording | undefined;
  private recordingStarted = false;
  private ended = false;

  constructor(
    private readonly client: Connection,
    private readonly info: ClientInfo,
    private readonly deps: ConnectionDeps,
  ) {
    const auth = new CallerAuthenticator(
      { verifyToken: (token) => deps.agent.verifyToken(token), keys: deps.keys },
      (identity, method) => this.admit(identity, method),
      () => client.end(),
    );
    client.on('authentication', (ctx) => auth.handle(ctx));
    client.on('session', (accept, reject) => {
      if (!this.live || this.channels >= MAX_CHANNELS_PER_CONNECTION) return reject();
      const session = accept();
      this.channels++;
      session.once('close', () => this.channels--);
      if ('refusal' in this.live) return this.refuseSession(session, this.live.refusal);
      new SessionChannel(this.host(this.live.session, this.live.masking), session);
    });
    client.on('tcpip', (accept, reject, info) => {
      if (!this.live || !('session' in this.live) || this.channels >= MAX_CHANNELS_PER_CONNECTION) return reject();
      const { session, masking } = this.live;
      this.recordEvents(session);
      const counted = (): ServerChannel | undefined => {
        const channel = accept();
        if (channel) {
          this.channels++;
          channel.once('close', () => this.channels--);
        }
        return channel;
      };
      openForward({ agent: deps.agent, target: deps.target.name, session, masking, upstream: () => this.upstream('read') }, info, counted, reject);
    });
    // Remote forwarding (`ssh -R`) and other global requests: refused (no reason field exists in REQUEST_FAILURE), recorded.
    client.on('request', (_accept, reject, name) => {
      reject?.();
      if (this.live && 'session' in this.live) this.live.session.record({ e: 'refused', request: name, reason: 'remote forwarding is refused' });
    });
    client.on('error', () => this.end('connection error'));
    client.on('close', () => this.end('client closed'));
  }

  private admit(identity: Identity, method: AuthMethod): void {
    this.deps.onAuthenticated();
    const { agent, target } = this.deps;
    const id = randomUUID();
    const started = startSession<SshEvent>(agent.sessions, { id, target: target.name, protocol: 'ssh', identity, close: (reason) => this.close(reason) }, agent.log);
    if (!started.ok) {
      this.live = { refusal: started.refusal.message };
      return;
    }
    this.live = { session: started.session, masking: sessionMaskingFor(agent, identity, target.name) };
    agent.log.info('ssh.session.start', { sessionId: id, target: target.name, subject: identity.subject, method, client: this.info.ip });
  }

  /** A session channel on a connection that was not admitted: its request gets the reason, then the connection ends. */
  private refuseSession(session: Session, refusal: string): void {
    const refuse = (accept: () => ServerChannel | undefined): void => {
      const channel = accept();
      if (!channel) return;
      channel.stderr.write(`${refusal}\n`);
      channel.exit(REFUSED_EXIT_STATUS);
      channel.end();
      this.client.end();
    };
    session.on('exec', (accept) => refuse(accept));
    session.on('shell', (accept) => refuse(accept));
    session.on('subsystem', (accept) => refuse(accept));
  }

  private host(session: StartedSession<SshEvent>, masking: SessionMaskingHandle): ChannelHost {
    const { agent, target } = this.deps;
    return {
      agent,
      target: target.name,
      session,
      masking,
      signal: this.abort.signal,
      upstream: (login) => this.upstream(login),
      terminal: (start) => this.terminal(session, masking, start),
      recordEvents: () => this.recordEvents(session),
      windowOpen: () => agent.approvals.windowOpen(principalKey(session.identity), target.name),
      channel: agent.channels.of(this.info.ip, this.info.port),
    };
  }

  private upstream(login: UpstreamLogin): Promise<Client> {
    // After the caller left nothing would end a connection opened for it.
    if (this.ended) return Promise.reject(new UpstreamError('the caller has left'));
    if (login === 'write') return connectUpstream(this.deps.target, 'write');
    if (!this.readUpstream) {
      const opened = connectUpstream(this.deps.target, 'read');
      this.readUpstream = opened;
      const forget = (): void => {
        if (this.readUpstream === opened) this.readUpstream = undefined;
      };
      opened.then((c) => c.once('close', forget), forget);
    }
    return this.readUpstream;
  }

  /**
   * The session's terminal recording, started by its first shell or exec (a connection records one
   * terminal; output of later terminal channels is added to it). A session whose first channel was
   * SFTP or a forward records JSON events, and later terminal output only as decisions.
   */
  private terminal(session: StartedSession<SshEvent>, masking: SessionMaskingHandle, start: { readonly command?: string; readonly pty: PseudoTtyInfo | undefined }): TerminalTap {
    const { agent, target } = this.deps;
    const settings = agent.recordingSettings(target.name);
    if (!this.recordingStarted && settings.mode !== 'off') {
      this.terminalRecording = new TerminalRecording(agent.recording, {
        sessionId: session.id,
        target: target.name,
        protocol: 'ssh',
        identity: session.identity,
        // A client without a terminal of its own (ssh -tt from a pipe) asks for a 0x0 pty.
        width: start.pty?.cols || 80,
        height: start.pty?.rows || 24,
        command: start.command,
        term: start.pty?.term,
        // Keystrokes are masked by the recording, and so is the output again (masked as the caller saw
        // it, a packet at a time): the echo of a secret typed key by key is whole only there.
        recordInput: settings.input,
        scanner: masking.profile?.scanner,
      });
      session.attach(new TerminalSessionRecorder(this.terminalRecording));
      this.recordingStarted = true;
    }
    const recording = this.terminalRecording;
    return {
      output: (text) => recording?.output(text),
      input: recording?.recordsInput ? (text) => recording.input(text) : undefined,
      resize: (cols, rows) => recording?.resize(cols, rows),
      note: (text) => recording?.mark(text),
    };
  }

  /** The session's JSON event recording (SFTP operations, forwards), when nothing records it yet. */
  private recordEvents(session: StartedSession<SshEvent>): void {
    const { agent, target } = this.deps;
    if (this.recordingStarted || agent.recordingSettings(target.name).mode === 'off') return;
    this.recordingStarted = true;
    session.attach(new JsonSessionRecorder(agent.recording, { sessionId: session.id, target: target.name, protocol: 'ssh', identity: session.identity, clientAddress: `${this.info.ip}:${this.info.port}`, at: new Date() }));
  }

  close(reason: string): void {
    this.client.end();
    this.end(reason);
  }

  private end(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.abort.abort();
    void this.readUpstream?.then((c) => c.end(), () => undefined);
    if (this.live && 'session' in this.live) this.live.session.end(reason);
  }
}
