import { createHash, randomUUID } from 'node:crypto';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import type { Action } from '../../../core/policy/decide';
import type { AgentContext, ProtocolListener } from '../../../agent/agent';
import { askApproval, type ApprovalOutcome } from '../../../agent/approvals/approval-flow';
import { JsonSessionRecorder, type ProtocolEvent } from '../../../agent/recording/session-recorder';
import type { SessionEvent } from '../../../agent/sessions/events';
import { startSession, type StartedSession } from '../../../agent/sessions/lifecycle';
import { sessionMaskingFor, type SessionMaskingHandle } from '../../../agent/sessions/session-masking';
import { LineFramer, parseLine, type LineRequest } from './codec';

/**
 * A small line protocol, written the way a new protocol plugs into the agent: only its codec, its
 * classifier and the rendering of outcomes are its own; admission, strict recording, decisions,
 * approvals, recording and masking are the shared layer's. `ECHO` and `GET` read, `SET` writes (and
 * needs approval where the policy says so), anything else is `unknown`. Replies are one line:
 * `OK ...`, `VALUE ...`, `NOTICE ...` (more follows) or `ERR ...`.
 *
 * The control plane knows three protocols; this one stands in the SSH slot of a policy (its lines are
 * commands: the policy's SSH `commands` facet names them).
 */
export const LINE_PROTOCOL = 'line';
export const LINE_AUTH_TIMEOUT_MS = 5_000;

/** Where `SET` writes: the protocol's "write credential" (only an approved or allowed write reaches it). */
export type LineStore = Map<string, string>;

type LineEvent = SessionEvent | ProtocolEvent;

type State =
  | { readonly phase: 'auth' }
  | { readonly phase: 'verifying' }
  | { readonly phase: 'ready'; readonly session: StartedSession<LineEvent>; readonly masking: SessionMaskingHandle; reason: string | undefined }
  | { readonly phase: 'closed' };

const CLASS_OF: Record<LineRequest['verb'], Action['class']> = { AUTH: 'control', ECHO: 'read', GET: 'read', SET: 'write', REASON: 'control', QUIT: 'control', unknown: 'unknown' };

class LineSession {
  private state: State = { phase: 'auth' };
  private readonly framer = new LineFramer();
  /** Lines are answered one at a time, in order (a held write holds the lines after it). */
  private queue: Promise<void> = Promise.resolve();
  private readonly abort = new AbortController();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly socket: Socket,
    private readonly target: string,
    private readonly context: AgentContext,
    private readonly store: LineStore,
  ) {
    this.timer = setTimeout(() => this.close('authentication timed out'), LINE_AUTH_TIMEOUT_MS);
    socket.on('data', (chunk: Buffer) => {
      const problem = this.framer.push(chunk, (line) => {
        this.queue = this.queue.then(() => this.onLine(line)).catch((e: unknown) => this.fail(e));
      });
      if (problem) this.close(`line of ${problem.bytes} bytes over the limit`);
    });
    socket.on('error', () => this.ended('client error'));
    socket.on('close', () => this.ended('client closed'));
  }

  close(reason: string): void {
    if (this.state.phase === 'closed') return;
    this.reply(`ERR twokey: ${reason}`);
    this.socket.end();
    this.ended(reason);
  }

  private ended(reason: string): void {
    const state = this.state;
    if (state.phase === 'closed') return;
    this.state = { phase: 'closed' };
    clearTimeout(this.timer);
    this.abort.abort();
    if (state.phase === 'ready') state.session.end(reason);
    this.socket.destroySoon();
  }

  private fail(e: unknown): void {
    this.context.log.error('line.session.failed', { error: String(e) });
    this.close('internal error');
  }

  private reply(line: string): void {
    if (!this.socket.writableEnded) this.socket.write(`${line}\n`);
  }

  private async onLine(line: string): Promise<void> {
    const state = this.state;
    const request = parseLine(line);
    if (state.phase === 'auth') return this.authenticate(request);
    if (state.phase !== 'ready') return;
    if (request.verb === 'QUIT') {
      this.reply('OK bye');
      this.socket.end();
      return this.ended('client quit');
    }
    if (request.verb === 'REASON') {
      state.reason = request.text || undefined;
      return this.reply('OK reason set');
    }
    const decision = this.context.decide(state.session.identity, this.target, { class: CLASS_OF[request.verb], ssh: { command: line } });
    state.session.record({ e: 'decision', text: state.masking.value(line), class: CLASS_OF[request.verb], decision: decision.kind, rule: decision.rule, reason: decision.kind === 'deny' ? decision.reason : undefined });
    if (decision.kind === 'deny') return this.reply(`ERR twokey: ${decision.reason}`);
    if (decision.kind === 'approve') {
      if (request.verb !== 'SET') return this.reply('ERR twokey: only writes are held for approval');
      const asked = await askApproval(
        { kind: 'statement', target: this.target, protocol: LINE_PROTOCOL, identity: state.session.identity, text: line, sha256: createHash('sha256').update(`line\n${line}`).digest('hex'), class: 'write', decision, reason: state.reason },
        { noun: 'command', reasonHint: 'Send REASON <why> first.' },
        { gate: this.context.approvals, record: (e) => state.session.record({ e: 'approval', ...e }), signal: this.abort.signal },
      );
      let outcome: ApprovalOutcome;
      if (asked.kind === 'pending') {
        this.reply(`NOTICE ${asked.notice}`);
        outcome = await asked.outcome;
      } else outcome = asked;
      if (this.state.phase !== 'ready') return;
      if (outcome.kind !== 'run') return this.reply(`ERR ${outcome.kind === 'refused' ? `${outcome.message}${outcome.hint ? ` (${outcome.hint})` : ''}` : 'twokey: no write window here'}`);
      this.reply(`NOTICE ${outcome.notice}`);
    }
    return this.run(request, state.masking, state.session);
  }

  private run(request: LineRequest, masking: SessionMaskingHandle, session: StartedSession<LineEvent>): void {
    switch (request.verb) {
      case 'ECHO': {
        const text = masking.value(request.text);
        session.record({ e: 'output', text });
        return this.reply(`OK ${text}`);
      }
      case 'GET': {
        const value = this.store.get(request.key);
        if (value === undefined) return this.reply(`ERR no such key ${request.key}`);
        const shown = masking.value(value, `store.${request.key}`);
        session.record({ e: 'output', text: shown });
        return this.reply(`VALUE ${shown}`);
      }
      case 'SET':
        this.store.set(request.key, request.value);
        return this.reply(`OK set ${request.key}`);
      default:
        return this.reply('ERR twokey: not understood');
    }
  }

  private async authenticate(request: LineRequest): Promise<void> {
    if (request.verb !== 'AUTH') return this.close('AUTH <token> first');
    this.state = { phase: 'verifying' };
    const verified = await this.context.verifyToken(request.token);
    if (this.state.phase !== 'verifying') return;
    if (!verified.ok) return this.close('authentication failed');
    clearTimeout(this.timer);
    const identity = verified.value;
    const id = randomUUID();
    const started = startSession<LineEvent>(
      this.context.sessions,
      {
        id,
        target: this.target,
        protocol: 'ssh',
        identity,
        close: (reason) => this.close(reason),
        recorder: () =>
          this.context.recordingSettings(this.target).mode === 'off'
            ? undefined
            : new JsonSessionRecorder(this.context.recording, { sessionId: id, target: this.target, protocol: LINE_PROTOCOL, identity, clientAddress: `${this.socket.remoteAddress}:${this.socket.remotePort}`, at: new Date() }),
      },
      this.context.log,
    );
    if (!started.ok) {
      this.reply(`ERR ${started.refusal.message}`);
      this.socket.end();
      this.state = { phase: 'closed' };
      return;
    }
    this.state = { phase: 'ready', session: started.session, masking: sessionMaskingFor(this.context, identity, this.target), reason: undefined };
    this.reply(`READY ${id}`);
  }
}

/** Serves the line protocol for one target on 127.0.0.1, port 0. */
export async function startLineListener(target: string, context: AgentContext, store: LineStore): Promise<ProtocolListener> {
  const server = createServer({ noDelay: true }, (socket) => new LineSession(socket, target, context, store));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    target,
    endpoint: `127.0.0.1:${port}`,
    async stop() {
      context.sessions.closeWhere((s) => s.target === target, 'the agent is stopping');
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
