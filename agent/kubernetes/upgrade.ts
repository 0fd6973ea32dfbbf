import { createHash, randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { principalKey } from '../../core/identity/identity';
import type { Result } from '../../core/result';
import { askApproval } from '../approvals/approval-flow';
import { RecordedCap } from '../recording/output-cap';
import { TerminalRecording } from '../recording/terminal-recorder';
import type { SessionEvent } from '../sessions/events';
import { startSession } from '../sessions/lifecycle';
import type { JudgedRequest } from './judge';
import { judgeRequest } from './judge';
import { describeRequest } from './kube-rules';
import { writeRawStatus } from './raw-status';
import type { KubeProxyDeps } from './request-handler';
import { requestEvent } from './request-event';
import { relayUpgradeBytes } from './spdy-relay';
import type { Credential } from './upstream';
import { SpdyTerminalReader } from './spdy-terminal';
import { TerminalFeed, type TerminalTap } from './terminal-feed';
import { relayWebSocket, unrelayableSubprotocol } from './websocket-relay';

/** Subresources whose streams are a terminal (recorded as asciicast); port-forward carries other bytes. */
const TERMINAL_SUBRESOURCES = new Set(['exec', 'attach']);

/**
 * An upgrade (exec, attach, port-forward over WebSocket or SPDY): judged like any request; `admin`
 * by the API mapping. An upgrade that needs approval is not held (a terminal cannot wait on a
 * reviewer): it is submitted and refused with the request id; once approved, the same command runs
 * once on the write token. exec and attach (over WebSocket or SPDY) are recorded as asciicast.
 */
export async function handleUpgrade(deps: KubeProxyDeps, req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
  const started = performance.now();
  socket.on('error', () => socket.destroy());
  const judgement = await judgeRequest(req, deps.target, deps.context, deps.sessions);
  if (!judgement.ok) {
    writeRawStatus(socket, judgement.refusal.reason, judgement.refusal.message);
    judgement.session?.session.record(requestEvent({ method: req.method, path: judgement.maskedPath }, 403, started, { summary: judgement.refusal.message }));
    return;
  }
  const judged = judgement.judged;
  const record = (status: number, extra: Parameters<typeof requestEvent>[3]): void =>
    judged.session.session.record(requestEvent({ verb: judged.classified.info.verb, method: req.method, path: judged.maskedPath }, status, started, extra));
  // Only channels (exec, attach, port-forward) and proxies are relayed as they are; anything else (a
  // watch over WebSocket) would carry responses the masking never reads.
  if (deps.rules.responseMasking(judged.classified, judged.masking, req.headers.accept).kind !== 'none') {
    writeRawStatus(socket, 'Forbidden', 'twokey: only exec, attach and port-forward are served over an upgraded connection');
    record(403, { summary: 'upgrade refused' });
    return;
  }
  const isWebSocket = (req.headers.upgrade ?? '').toLowerCase() === 'websocket';
  const isTerminal = TERMINAL_SUBRESOURCES.has(judged.classified.action.kubernetes?.subresource ?? '');
  // Checked before an approval is spent on it: a terminal's WebSocket is relayed message by message.
  const unrelayable = isWebSocket && isTerminal ? unrelayableSubprotocol(req) : undefined;
  if (unrelayable) {
    writeRawStatus(socket, 'BadRequest', unrelayable);
    record(400, { summary: unrelayable });
    return;
  }
  const credential = await credentialFor(deps, judged);
  if (credential.kind === 'refused') {
    writeRawStatus(socket, 'Forbidden', credential.message);
    record(403, { summary: credential.message });
    return;
  }
  const terminal = isTerminal ? terminalTap(deps, judged, socket) : undefined;
  if (terminal && !terminal.ok) {
    writeRawStatus(socket, 'ServiceUnavailable', terminal.error);
    record(503, { summary: terminal.error });
    return;
  }
  const tap = terminal?.value;
  const done = judged.session.begin((reason) => socket.destroy(new Error(reason)));
  let ended = 'stream closed';
  try {
    // A terminal over WebSocket is read message by message; anything else (SPDY, port-forward's SPDY
    // tunnelled in WebSocket, whose subprotocol is no token the WebSocket library accepts) byte for byte.
    const relayed =
      isWebSocket && tap
        ? await relayWebSocket(deps.upstream, req, socket, head, judged.url, credential.credential, tap)
        : await relayUpgradeBytes(deps.upstream, req, socket, head, judged.url, credential.credential, tap && new SpdyTerminalReader(new TerminalFeed(tap)));
    if (relayed.error) ended = relayed.error;
    record(relayed.status, { bytes: relayed.bytes, error: relayed.error });
  } finally {
    tap?.end(ended);
    done();
  }
}

/** Which token the stream uses: the read token when allowed; the write token under an approval (a window or a grant). */
async function credentialFor(deps: KubeProxyDeps, judged: JudgedRequest): Promise<{ kind: 'ok'; credential: Credential } | { kind: 'refused'; message: string }> {
  if (judged.decision.kind === 'allow') return { kind: 'ok', credential: 'read' };
  if (judged.decision.kind !== 'approve') return { kind: 'refused', message: 'twokey: denied' };
  const { session } = judged.session;
  const sha256 = createHash('sha256').update(`kubernetes\nupgrade\n${judged.url}`).digest('hex');
  const key = `${principalKey(session.identity)}\n${sha256}`;
  const pending = deps.pendingStreams.find(key);
  if (pending !== undefined) {
    if (!deps.context.approvals.takeOneTimeGrant(principalKey(session.identity), deps.target, sha256)) {
      return { kind: 'refused', message: `twokey: this command was sent for approval as request ${pending}; run the same command again once it is approved` };
    }
    deps.pendingStreams.forget(key);
    return { kind: 'ok', credential: 'write' };
  }
  const stop = new AbortController();
  const asked = await askApproval(
    {
      kind: 'statement',
      target: deps.target,
      protocol: 'kubernetes',
      identity: session.identity,
      text: reviewLine(judged),
      sha256,
      class: judged.classified.action.class,
      decision: judged.decision,
      reason: undefined,
    },
    { noun: 'request', reasonHint: 'kubectl sends no reason with exec, attach or port-forward' },
    { gate: deps.context.approvals, record: (e) => session.record({ e: 'approval', ...e }), signal: stop.signal },
  );
  if (asked.kind === 'run') return { kind: 'ok', credential: 'write' };
  if (asked.kind === 'pending') {
    // Not waited for: the approval becomes a one-time grant for the same command.
    stop.abort();
    void asked.outcome.catch(() => undefined);
    deps.pendingStreams.add(key, asked.requestId, judged.decision.approval.timeoutSeconds * 1000);
    return { kind: 'refused', message: `${asked.notice}; run the same command again once it is approved` };
  }
  return { kind: 'refused', message: asked.kind === 'refused' ? `${asked.message}${asked.hint ? ` (${asked.hint})` : ''}` : 'twokey: not a write window request' };
}

function reviewLine(judged: JudgedRequest): string {
  return `${describeRequest(judged.classified)}\n${judged.url}`;
}

/** The asciicast recording of an exec or attach: a session of its own (admitted by the registry), next to the API session. */
function terminalTap(deps: KubeProxyDeps, judged: JudgedRequest, socket: Duplex): Result<TerminalTap & { end(reason: string): void }, string> {
  const { session } = judged.session;
  const id = randomUUID();
  const query = new URL(judged.url, 'https://agent.invalid').searchParams;
  const command = query.getAll('command').join(' ');
  let recording: TerminalRecording | undefined;
  const started = startSession<SessionEvent>(
    deps.context.sessions,
    {
      id,
      target: deps.target,
      protocol: 'kubernetes',
      identity: session.identity,
      close: (reason) => socket.destroy(new Error(reason)),
      recorder: () => {
        const settings = deps.context.recordingSettings(deps.target);
        if (settings.mode === 'off') return undefined;
        recording = new TerminalRecording(deps.context.recording, {
          sessionId: id,
          target: deps.target,
          protocol: 'kubernetes',
          identity: session.identity,
          width: 80,
          height: 24,
          command: `${describeRequest(judged.classified)}${command ? ` -- ${command}` : ''}`,
          scanner: judged.masking.profile?.scanner,
          recordInput: settings.input,
        });
        return recording;
      },
    },
    deps.context.log,
  );
  if (!started.ok) return { ok: false, error: started.refusal.message };
  session.record({ e: 'terminal', sessionId: id, path: judged.maskedPath });
  // As an SSH channel's, output and input are recorded up to a cap, with a note of what was left out.
  const note = (text: string): void => recording?.mark(text);
  const recorded = new RecordedCap((text) => recording?.output(text), note);
  const typed = new RecordedCap((text) => recording?.input(text), note, 'input');
  return {
    ok: true,
    value: {
      output: (text) => recorded.add(text),
      input: (text) => typed.add(text),
      resize: (w, h) => recording?.resize(w, h),
      end: (reason) => {
        recorded.finish();
        typed.finish();
        started.session.end(reason);
      },
    },
  };
}
