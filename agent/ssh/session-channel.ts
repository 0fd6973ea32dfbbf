import type { Client, ClientChannel, PseudoTtyInfo, ServerChannel, Session } from 'ssh2';
import { matchesAny } from '../../core/glob';
import { parseScpSinkCommand, type ScpSinkCommand } from '../../core/ssh/scp-sink-command';
import type { CallerChannel } from '../sessions/channels';
import { judgeExec, judgeShell, judgeSubsystem, REASON_ENV, type JudgeDeps, type SshSessionScope, type Verdict } from './judge';
import { RecordedCap } from '../recording/output-cap';
import { relayOutput } from './output-relay';
import { SftpRelay } from './sftp/sftp-relay';
import { serveScpUpload } from './scp/scp-upload';
import { lazySftp } from './sftp/write-change';
import { UpstreamError, type UpstreamLogin } from './upstream';

/** Environment variables a caller may pass (`SendEnv`/`SetEnv`); the rest are refused. TWOKEY_REASON stays with the agent. */
export const ENV_ALLOW_LIST = ['LANG', 'LC_*', 'TZ', REASON_ENV] as const;
export const MAX_ENV_VARS = 32;
export const MAX_ENV_VALUE_BYTES = 4096;
/** Exit status of a command twokey refused (as a shell reports a command it cannot run). */
export const REFUSED_EXIT_STATUS = 126;
/** Exit status when the target could not be reached (as `ssh` itself reports a connection failure). */
export const UPSTREAM_FAILED_EXIT_STATUS = 255;
/** How often a shell on the write login checks that its write window is still open. */
export const WINDOW_CHECK_INTERVAL_MS = 5_000;

/** What a session channel needs of its connection. */
export interface ChannelHost extends SshSessionScope {
  readonly signal: AbortSignal;
  /** The read login's connection is shared by the connection's channels; a write login's is this channel's own. */
  upstream(login: UpstreamLogin): Promise<Client>;
  /** Output of a terminal channel (shell or exec), masked as the caller saw it, for the recording. */
  terminal(start: { readonly command?: string; readonly pty: PseudoTtyInfo | undefined }): TerminalTap;
  /** Starts the session's JSON event recording (SFTP), unless a terminal recording already runs. */
  recordEvents(): void;
  /** Whether the caller's write window on this target is still open. */
  windowOpen(): boolean;
  /** The channel of a connection the agent opened for a caller (MCP). */
  readonly channel: CallerChannel | undefined;
}

/** Where a terminal channel's output, size changes and notes go in the recording; `input` only when the policy records keystrokes. */
export interface TerminalTap {
  output(text: string): void;
  readonly input: ((text: string) => void) | undefined;
  resize(cols: number, rows: number): void;
  note(text: string): void;
}

type Kind = { readonly kind: 'exec'; readonly command: string } | { readonly kind: 'shell' } | { readonly kind: 'subsystem'; readonly name: string };

/**
 * One `session` channel (RFC 4254 section 6): pty, environment, window changes and signals are kept
 * and passed on; the one shell, exec or subsystem request is judged, then relayed to the target on
 * the login the verdict names. X11 and agent forwarding are refused with a line on stderr.
 */
export class SessionChannel {
  private pty: PseudoTtyInfo | undefined;
  private readonly env: Record<string, string> = {};
  private reason: string | undefined;
  private readonly refusals: string[] = [];
  private upstreamChannel: ClientChannel | undefined;
  private resize: ((cols: number, rows: number) => void) | undefined;
  private started = false;

  constructor(
    private readonly host: ChannelHost,
    session: Session,
  ) {
    // A pty or variable sent after the exec, shell or subsystem is refused: the action was judged without it
    // (a read judged without a terminal must not get one, where a pager offers a shell).
    session.on('pty', (accept, reject, info) => {
      if (this.started) return reject?.();
      this.pty = info;
      accept?.();
    });
    session.on('env', (accept, reject, { key, val }) => {
      if (this.started || !this.takeEnv(key, val)) return reject?.();
      accept?.();
    });
    session.on('window-change', (accept, _reject, info) => {
      if (this.pty) this.pty = { ...this.pty, ...info };
      this.upstreamChannel?.setWindow(info.rows, info.cols, info.height, info.width);
      this.resize?.(info.cols, info.rows);
      accept?.();
    });
    session.on('signal', (accept, _reject, { name }) => {
      this.upstreamChannel?.signal(name);
      accept?.();
    });
    session.on('x11', (_accept, reject) => {
      this.refusals.push('twokey: X11 forwarding is refused (the agent forwards no display)');
      reject?.();
    });
    session.on('auth-agent', (_accept, reject) => {
      this.refusals.push('twokey: agent forwarding is refused (your keys stay on your machine)');
      reject?.();
    });
    // accept() must run in the handler's own turn (after an await ssh2 no longer hands out the channel).
    session.on('exec', (accept, _reject, { command }) => {
      const channel = accept();
      if (channel) void this.start(channel, { kind: 'exec', command });
    });
    session.on('shell', (accept) => {
      const channel = accept();
      if (channel) void this.start(channel, { kind: 'shell' });
    });
    session.on('subsystem', (accept, reject, { name }) => {
      if (name !== 'sftp') return reject?.();
      const channel = accept();
      if (channel) void this.start(channel, { kind: 'subsystem', name });
    });
  }

  private takeEnv(key: string, value: string): boolean {
    if (Buffer.byteLength(value) > MAX_ENV_VALUE_BYTES || !matchesAny(ENV_ALLOW_LIST, key)) return false;
    if (key === REASON_ENV) {
      this.reason = value.trim() || undefined;
      return true;
    }
    if (!(key in this.env) && Object.keys(this.env).length >= MAX_ENV_VARS) return false;
    this.env[key] = value;
    return true;
  }

  private async start(channel: ServerChannel, kind: Kind): Promise<void> {
    this.started = true;
    const eol = this.pty ? '\r\n' : '\n';
    const notify = (line: string): void => void channel.stderr.write(`${line}${eol}`);
    for (const refusal of this.refusals) notify(refusal);
    const abort = new AbortController();
    const onParentAbort = (): void => abort.abort();
    this.host.signal.addEventListener('abort', onParentAbort);
    channel.on('close', () => abort.abort());
    const deps: JudgeDeps = { agent: this.host.agent, target: this.host.target, session: this.host.session, notify, signal: abort.signal, reason: this.reason, masking: this.host.masking, channel: this.host.channel };
    try {
      const scpSink = kind.kind === 'exec' ? parseScpSinkCommand(kind.command) : undefined;
      if (kind.kind === 'exec' && scpSink) return await this.serveScp(channel, kind.command, scpSink, deps);
      // The recording starts before the decision, so that the decision is in it.
      if (kind.kind === 'subsystem') this.host.recordEvents();
      // The recording's title names the command, masked as every other recorded text.
      const terminal = kind.kind === 'subsystem' ? undefined : this.host.terminal({ command: kind.kind === 'exec' ? this.host.masking.value(kind.command) : undefined, pty: this.pty });
      const verdict = await this.verdictFor(deps, kind);
      if (abort.signal.aborted) return;
      if (verdict.kind === 'refused') return this.finish(channel, notify, verdict.message, REFUSED_EXIT_STATUS);
      const upstream = await this.host.upstream(verdict.login);
      // A write login's connection is this action's own: it ends with the action, however that ends
      // (the caller gone while it was opened, the target refusing the channel, the command done).
      const release = verdict.login === 'write' ? (): void => void upstream.end() : (): void => undefined;
      if (abort.signal.aborted) return release();
      const stream = await this.open(upstream, kind).catch((e: unknown) => {
        release();
        throw e;
      });
      if (abort.signal.aborted) {
        stream.close();
        return release();
      }
      this.relay(channel, stream, terminal, verdict, deps);
      if (verdict.login === 'write') {
        // Done when the command is (an MCP call's channel may never report its close).
        stream.once('close', release);
        channel.on('close', release);
        if (kind.kind === 'shell') this.endWithWindow(stream, notify);
      }
    } catch (e) {
      const message = e instanceof UpstreamError ? `twokey: ${e.message}` : 'twokey: the target could not run this';
      if (!(e instanceof UpstreamError)) this.host.agent.log.error('ssh.channel.failed', { sessionId: this.host.session.id, error: String(e) });
      // A caller that left gets nothing more (its connection opens no upstream once it ended).
      if (!abort.signal.aborted) this.finish(channel, notify, message, UPSTREAM_FAILED_EXIT_STATUS);
    } finally {
      this.host.signal.removeEventListener('abort', onParentAbort);
    }
  }

  /** An scp upload (`scp -t`) is served by the agent as the sink: its files are judged like SFTP uploads. */
  private async serveScp(channel: ServerChannel, command: string, sink: ScpSinkCommand, deps: JudgeDeps): Promise<void> {
    this.host.recordEvents();
    const status = await serveScpUpload(channel, command, sink, { judge: deps, upstream: (login) => this.host.upstream(login) });
    if (deps.signal.aborted) return;
    channel.exit(status);
    channel.end();
  }

  private verdictFor(deps: JudgeDeps, kind: Kind): Promise<Verdict> | Verdict {
    switch (kind.kind) {
      case 'exec':
        return judgeExec(deps, kind.command, this.pty !== undefined);
      case 'shell':
        return judgeShell(deps);
      case 'subsystem':
        return judgeSubsystem(deps, kind.name);
    }
  }

  private finish(channel: ServerChannel, notify: (line: string) => void, message: string, status: number): void {
    notify(message);
    channel.exit(status);
    channel.end();
  }

  private open(upstream: Client, kind: Kind): Promise<ClientChannel> {
    const pty = this.pty ? { rows: this.pty.rows, cols: this.pty.cols, width: this.pty.width, height: this.pty.height, term: this.pty.term, modes: this.pty.modes } : undefined;
    const env = { ...this.env };
    return new Promise<ClientChannel>((resolve, reject) => {
      const done = (e: Error | undefined, stream: ClientChannel): void => {
        if (e) return reject(new UpstreamError(`the target refused the channel (${e.message})`));
        // ssh2 may parse the exit status in the same read as this reply, before an awaiting caller runs.
        watchExit(stream);
        resolve(stream);
      };
      if (kind.kind === 'exec') upstream.exec(kind.command, { env, pty }, done);
      else if (kind.kind === 'shell') upstream.shell(pty ?? false, { env }, done);
      else upstream.subsys(kind.name, done);
    });
  }

  /** Caller and target channels joined: stdin (unless the verdict keeps it back), output masked, exit status passed back. */
  private relay(channel: ServerChannel, stream: ClientChannel, terminal: TerminalTap | undefined, verdict: Extract<Verdict, { kind: 'run' }>, deps: JudgeDeps): void {
    this.upstreamChannel = stream;
    if (!terminal) {
      this.relaySftp(channel, stream, deps);
      const err = relayOutput(stream.stderr, channel.stderr, this.host.masking, () => undefined);
      return passExit(stream, channel, () => err.finish(), deps.signal);
    }
    this.resize = (cols, rows) => terminal.resize(cols, rows);
    // Like a statement's rows, a channel's output (and input, when recorded) is recorded up to a cap.
    const note = (text: string): void => terminal.note(text);
    const output = new RecordedCap((text) => terminal.output(text), note);
    const tap = (data: Buffer | string): void => output.add(data);
    const out = relayOutput(stream, channel, this.host.masking, tap);
    const err = relayOutput(stream.stderr, channel.stderr, this.host.masking, tap);
    const record = terminal.input;
    const input = record && verdict.stdin ? new RecordedCap(record, note, 'input') : undefined;
    if (input) channel.on('data', (data: Buffer) => input.add(data));
    if (verdict.stdin) channel.pipe(stream);
    else stream.end();
    passExit(stream, channel, () => {
      out.finish();
      err.finish();
      output.finish();
      input?.finish();
    }, deps.signal);
  }

  /** SFTP judged per request; changes run on a write login connection of this channel's own, opened on first use. */
  private relaySftp(channel: ServerChannel, stream: ClientChannel, deps: JudgeDeps): void {
    const sessions = lazySftp((login) => this.host.upstream(login));
    channel.on('close', () => sessions.end());
    new SftpRelay(channel, stream, {
      judge: deps,
      masking: this.host.masking,
      writer: () => sessions.writer(),
      reader: () => sessions.reader(),
      fail: (reason) => {
        deps.notify(reason);
        stream.close();
      },
    });
  }

  /** A shell on the write login lasts as long as the write window that let it start. */
  private endWithWindow(stream: ClientChannel, notify: (line: string) => void): void {
    const timer = setInterval(() => {
      if (this.host.windowOpen()) return;
      clearInterval(timer);
      notify('twokey: your write window ended; the shell on the write login closes');
      stream.close();
    }, WINDOW_CHECK_INTERVAL_MS);
    stream.on('close', () => clearInterval(timer));
  }
}

type Exit = { readonly code: number } | { readonly signal: string; readonly dump: boolean; readonly desc: string };
const exits = new WeakMap<ClientChannel, Exit>();

/** Keeps the exit status or signal a channel reports (RFC 4254 section 6.10), from the moment it opens. */
function watchExit(stream: ClientChannel): void {
  stream.on('exit', (code: number | null, signalName?: string, dump?: boolean, desc?: string) => {
    exits.set(stream, code === null || code === undefined ? { signal: signalName ?? 'SIGKILL', dump: Boolean(dump), desc: desc ?? '' } : { code });
  });
}

/** The target's exit status or signal passed to the caller when the target's channel closes. */
function passExit(stream: ClientChannel, channel: ServerChannel, beforeExit: () => void, signal: AbortSignal): void {
  stream.on('close', () => {
    beforeExit();
    const exit = exits.get(stream);
    if (exit && 'code' in exit) channel.exit(exit.code);
    else if (exit) {
      try {
        channel.exit(exit.signal.replace(/^SIG/, ''), exit.dump, exit.desc);
      } catch {
        // ssh2 refuses a signal name RFC 4254 does not list: the caller gets a failure status instead.
        channel.exit(UPSTREAM_FAILED_EXIT_STATUS);
      }
    }
    channel.end();
  });
  signal.addEventListener('abort', () => stream.close());
}
