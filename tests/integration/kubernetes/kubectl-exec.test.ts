import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { CONTROL, encodeControl, encodeData, HeaderCompressor } from '../../support/kube-fixture/streams/spdy-codec';
import { startKubeFixture, type KubeFixture } from '../../support/kube-fixture';
import { KUBE_TEST_POLICY, kubectl, startKubeStack, type KubeStack } from '../../support/kube-stack';
import { postDecision, readOutbox, waitForMail } from '../../support/outbox';
import { tokenFor, waitFor } from '../../support/control-plane';
import { twokey } from '../../support/cli';
import { KUBECTL } from '../../support/kubectl';
import { underTerminal } from '../../support/terminal';



const PROMPT = '/ # ';

/** kubectl under a pseudo-terminal, typing each line once the fixture's shell prompts for it. */
const kubectlInTerminal = (stack: KubeStack, token: string, args: string, lines: readonly string[], env: NodeJS.ProcessEnv = {}) =>
  underTerminal(`${KUBECTL} --server=${stack.server('k8s')} --certificate-authority=${stack.caFile('k8s')} --token=${token} ${args}`, lines, PROMPT, { ...process.env, KUBECONFIG: '/dev/null', HOME: stack.dataDir, ...env });

/** kubectl 1.32 speaks SPDY (as older kubectl does) when its WebSocket remote command is switched off. */
const SPDY = { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' };

describe('kubectl exec through the agent', () => {
  let fixture: KubeFixture;
  let stack: KubeStack;
  let alice: string;

  beforeAll(async () => {
    fixture = await startKubeFixture({ tokens: { 'read-sa': { user: 'system:serviceaccount:twokey:reader', access: 'read' }, 'write-sa': { user: 'system:serviceaccount:twokey:writer', access: 'write' } } });
    stack = await startKubeStack({ policy: KUBE_TEST_POLICY, targets: ['k8s'], upstream: { url: fixture.url, caPem: fixture.caPem, readToken: 'read-sa', writeToken: 'write-sa' } });
    alice = await stack.token('alice', ['support']);
    fixture.state.files.set('/notes', 'write to ann@example.com\n');
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
    await fixture?.stop();
  });

  /** bob approves the request the mail about `mentions` is for; the decision reaches the agent over the tunnel and becomes a one-time grant. */
  async function approve(mentions: string): Promise<void> {
    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', mentions, new Set(), 30_000);
    expect((await postDecision(mail.link, mail.token, 'approve')).status).toBe(200);
    await new Promise((r) => setTimeout(r, 500));
  }

  it('runs exec -it once approved on the write token, records it as asciicast (masked) and replays it', async () => {
    const first = await kubectlInTerminal(stack, alice, 'exec -it web-1 -- sh', []);
    expect(first.code).not.toBe(0);
    expect(first.output).toMatch(/twokey: .*request [0-9a-f-]{36}.*run the same command again once it is approved/);
    await approve('tty=true');
    // kubectl retried the refused WebSocket over SPDY: still one request, one mail.
    expect(readOutbox(stack.cp.outboxDir).filter((m) => m.text.includes('tty=true')).length).toBe(1);
    const session = await kubectlInTerminal(stack, alice, 'exec -it web-1 -- sh', ['echo typed-at-a-tty', 'cat /notes', 'exit 7']);
    expect(session.output).toContain('typed-at-a-tty');
    expect(session.output).toContain('write to ann@example.com');
    expect(session.code).toBe(7);
    expect(fixture.state.requests.filter((r) => r.path.endsWith('/exec')).map((r) => `${r.user ?? ''} ${r.status ?? ''}`)).toContain('system:serviceaccount:twokey:writer 101');

    const again = await kubectlInTerminal(stack, alice, 'exec -it web-1 -- sh', ['exit 0']);
    expect(again.output).toMatch(/twokey: .*request [0-9a-f-]{36}/);
    const second = await waitFor(() => readOutbox(stack.cp.outboxDir).filter((m) => m.text.includes('tty=true'))[1], 30_000, 'the second request mailed');
    expect((await postDecision(second.link, second.token, 'deny')).status).toBe(200);

    // An API session ends after a quiet spell; ended here so that its recording ships now.
    stack.agent.context.sessions.closeAll('the test reads the recordings');
    await waitFor(() => (stack.agent.context.recording.pending().sessions === 0 ? true : undefined), 30_000, 'recordings shipped');
    const erin = await tokenFor(stack.cp, 'erin', ['auditor']);
    const listed = await twokey(['sessions', 'list', '--target', 'k8s', '--json', '--url', stack.cp.httpUrl], { TWOKEY_TOKEN: erin });
    const sessions = (JSON.parse(listed.stdout) as { sessions: { sessionId: string; format: string }[] }).sessions;
    const terminal = sessions.find((s) => s.format === 'asciicast');
    expect(terminal).toBeDefined();
    const replayed = await twokey(['replay', terminal?.sessionId ?? '', '--url', stack.cp.httpUrl], { TWOKEY_TOKEN: erin });
    expect(replayed.stdout).toContain('typed-at-a-tty');
    expect(replayed.stdout).toContain('write to ');
    expect(replayed.stdout).not.toContain('ann@example.com');
    expect(replayed.stderr).toContain('-- alice on k8s: get pods/exec default/web-1 -- sh');

    const api = sessions.find((s) => s.format === 'ndjson');
    const transcript = await twokey(['replay', api?.sessionId ?? '', '--url', stack.cp.httpUrl], { TWOKEY_TOKEN: erin });
    expect(transcript.stdout).toMatch(/kubectl> GET \/api\/v1\/namespaces\/default\/pods\/web-1\/exec\?/);
    expect(transcript.stdout).toMatch(/-- terminal session [0-9a-f-]{36}/);
  });

  it('relays exec over SPDY (older kubectl) once approved', async () => {
    const spdy = SPDY;
    const args = ['exec', 'web-1', '--', 'cat', '/etc/hostname'];
    const first = await kubectl(stack, 'k8s', alice, args, { env: spdy });
    expect(first.stderr).toMatch(/twokey: .*request [0-9a-f-]{36}/);
    await approve('etc%2Fhostname');
    const ran = await kubectl(stack, 'k8s', alice, args, { env: spdy });
    expect(ran).toMatchObject({ code: 0, stdout: 'fixture\n' });
    expect(fixture.state.requests.filter((r) => r.path.endsWith('/exec')).at(-1)).toEqual(expect.objectContaining({ method: 'POST', status: 101, user: 'system:serviceaccount:twokey:writer' }));
  });

  /** The asciicast sessions recorded so far, replayed by an auditor. */
  async function replayedTerminals(): Promise<{ stdout: string; stderr: string }[]> {
    stack.agent.context.sessions.closeAll('the test reads the recordings');
    await waitFor(() => (stack.agent.context.recording.pending().sessions === 0 ? true : undefined), 30_000, 'recordings shipped');
    const erin = await tokenFor(stack.cp, 'erin', ['auditor']);
    const listed = await twokey(['sessions', 'list', '--target', 'k8s', '--json', '--url', stack.cp.httpUrl], { TWOKEY_TOKEN: erin });
    const sessions = (JSON.parse(listed.stdout) as { sessions: { sessionId: string; format: string }[] }).sessions.filter((s) => s.format === 'asciicast');
    return Promise.all(sessions.map((s) => twokey(['replay', s.sessionId, '--url', stack.cp.httpUrl], { TWOKEY_TOKEN: erin })));
  }

  it('records exec -it over SPDY as asciicast (output masked) and replays it', async () => {
    const args = 'exec -it web-1 -- /bin/sh';
    const first = await kubectlInTerminal(stack, alice, args, [], SPDY);
    expect(first.output).toMatch(/twokey: .*request [0-9a-f-]{36}/);
    await approve('command=%2Fbin%2Fsh');
    const session = await kubectlInTerminal(stack, alice, args, ['echo typed-over-spdy', 'cat /notes', 'exit 3'], SPDY);
    expect(session.output).toContain('typed-over-spdy');
    expect(session.output).toContain('write to ann@example.com');
    expect(session.code).toBe(3);
    expect(fixture.state.requests.filter((r) => r.path.endsWith('/exec')).at(-1)).toEqual(expect.objectContaining({ method: 'POST', status: 101, user: 'system:serviceaccount:twokey:writer' }));
    const replayed = (await replayedTerminals()).find((r) => r.stdout.includes('typed-over-spdy'));
    expect(replayed).toBeDefined();
    expect(replayed?.stdout).toContain('write to ');
    expect(replayed?.stdout).not.toContain('ann@example.com');
    expect(replayed?.stderr).toContain('-- alice on k8s: create pods/exec default/web-1 -- /bin/sh');
  });
  it('closes an exec over SPDY whose stdin stream is named in a way the recording would read as another stream, and keeps serving', async () => {
    const path = '/api/v1/namespaces/default/pods/web-1/exec?command=sh&stdin=true&stdout=true&tty=false';
    const first = await spdyUpgrade(path);
    expect(first.head).toMatch(/^HTTP\/1\.1 403 /);
    first.socket.destroy();
    await approve('command=sh&stdin=true');
    const relayed = await spdyUpgrade(path);
    expect(relayed.head).toMatch(/^HTTP\/1\.1 101 /);
    const headers = new HeaderCompressor();
    const syn = (id: number, type: string) => {
      const fixed = Buffer.alloc(10);
      fixed.writeUInt32BE(id, 0);
      return encodeControl(CONTROL.SYN_STREAM, 0, Buffer.concat([fixed, headers.compress(new Map([['streamtype', type]]))]));
    };
    let closed = false;
    relayed.socket.once('close', () => (closed = true));
    // The API server (as Go reads SPDY headers) takes the first of NUL-separated values: this is stdin to it.
    relayed.socket.write(Buffer.concat([syn(1, 'error'), syn(3, 'stdin\u0000error'), syn(5, 'stdout'), encodeData(3, Buffer.from('echo typed-unrecorded\n'))]));
    await waitFor(() => (closed ? true : undefined), 20_000, 'the agent to close the connection');
    expect(relayed.received()).not.toContain('typed-unrecorded');
    const pods = await kubectl(stack, 'k8s', alice, ['get', 'pods', '-o', 'name']);
    expect(pods).toMatchObject({ code: 0, stdout: expect.stringContaining('pod/web-1') });
  });

  /** A raw SPDY upgrade to the agent: the answer's head, then the socket and what arrived after it. */
  async function spdyUpgrade(path: string): Promise<{ head: string; socket: TLSSocket; received: () => string }> {
    const url = new URL(stack.server('k8s'));
    const socket = tlsConnect({ host: url.hostname, port: Number(url.port), ca: readFileSync(stack.caFile('k8s')) });
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
    socket.write(`POST ${path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${alice}\r\nconnection: Upgrade\r\nupgrade: SPDY/3.1\r\nx-stream-protocol-version: v4.channel.k8s.io\r\ncontent-length: 0\r\n\r\n`);
    let data = Buffer.alloc(0);
    socket.on('data', (c: Buffer) => (data = Buffer.concat([data, c])));
    const head = await waitFor(() => (data.includes('\r\n\r\n') ? data.subarray(0, data.indexOf('\r\n\r\n')).toString('latin1') : undefined), 30_000, 'the upgrade answer');
    return { head, socket, received: () => data.toString('latin1') };
  }
});
