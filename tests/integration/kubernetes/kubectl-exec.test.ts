import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MAX_WS_MESSAGE_BYTES } from '../../../agent/kubernetes/websocket-relay';
import { MAX_RECORDED_OUTPUT_BYTES } from '../../../agent/recording/output-cap';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { CONTROL, encodeControl, encodeData, HeaderCompressor } from '../../support/kube-fixture/streams/spdy-codec';
import { startKubeFixture, type KubeFixture } from '../../support/kube-fixture';
import { connect } from 'node:net';
import { writeFileSync } from 'node:fs';
import { KUBE_TEST_POLICY, kubectl, runKubectl, startKubeStack, streamKubectl, type KubectlResult, type KubeStack } from '../../support/kube-stack';
import { decisionDelivered, postDecision, readOutbox, waitForMail } from '../../support/outbox';
import { tokenFor, waitFor } from '../../support/control-plane';
import { twokey } from '../../support/cli';
import { KUBECTL } from '../../support/kubectl';
import { underTerminal } from '../../support/terminal';



const PROMPT = '/ # ';
/** The test policy with keystrokes recorded on `k8s`. */
const TYPED_POLICY = KUBE_TEST_POLICY.replace('{ name: k8s, protocol: kubernetes, agent: kube-agent }', '{ name: k8s, protocol: kubernetes, agent: kube-agent, recording: { input: true } }');

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
    stack = await startKubeStack({ policy: TYPED_POLICY, targets: ['k8s'], upstream: { url: fixture.url, caPem: fixture.caPem, readToken: 'read-sa', writeToken: 'write-sa' } });
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
    await decisionDelivered(mail);
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
    // The policy records keystrokes on this target: what alice typed, masked like the output.
    expect(replayed.stderr).toMatch(/-- \[\d+\.\d{3}s\] typed [^\n]*echo typed-at-a-tty\\u000D/);

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
    const erin = await tokenFor(stack.cp, 'erin', ['auditor']);
    return Promise.all((await terminalSessions(erin)).map((id) => twokey(['replay', id, '--url', stack.cp.httpUrl], { TWOKEY_TOKEN: erin })));
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

  it('runs kubectl attach -it once approved and records it as asciicast', async () => {
    // A pod whose container has a terminal (attach -t needs one); made straight at the fixture.
    const ca = join(stack.dataDir, 'fixture-ca.pem');
    writeFileSync(ca, fixture.caPem);
    const manifest = join(stack.dataDir, 'term.yaml');
    writeFileSync(manifest, 'apiVersion: v1\nkind: Pod\nmetadata: { name: term-1, namespace: default }\nspec: { containers: [{ name: main, image: busybox, stdin: true, tty: true }] }\n');
    expect((await runKubectl([`--server=${fixture.url}`, `--certificate-authority=${ca}`, '--token=write-sa', 'apply', '-f', manifest], { KUBECONFIG: '/dev/null', HOME: stack.dataDir })).code).toBe(0);
    const first = await kubectlInTerminal(stack, alice, 'attach -it term-1', []);
    expect(first.code).not.toBe(0);
    expect(first.output).toMatch(/twokey: .*request [0-9a-f-]{36}.*run the same command again once it is approved/);
    await approve('/attach?');
    const attached = await kubectlInTerminal(stack, alice, 'attach -it term-1', ['echo attached-and-typing', 'exit 0']);
    expect(attached.output).toContain('attached-and-typing');
    expect(fixture.state.requests.filter((r) => r.path.endsWith('/attach')).map((r) => `${r.user ?? ''} ${r.status ?? ''}`)).toContain('system:serviceaccount:twokey:writer 101');
    const replayed = (await replayedTerminals()).find((r) => r.stdout.includes('attached-and-typing'));
    expect(replayed?.stderr).toContain('-- alice on k8s: get pods/attach default/term-1');
  });

  const seenForwards = new Set<string>();
  /** kubectl 1.32 forwards over WebSocket (SPDY tunnelled in it); with this it forwards over SPDY, as older kubectl does. */
  const FORWARDS = [
    { transport: 'WebSocket', env: {}, method: 'GET' },
    { transport: 'SPDY', env: { KUBECTL_PORT_FORWARD_WEBSOCKETS: 'false' }, method: 'POST' },
  ];

  it.each(FORWARDS)('relays kubectl port-forward over $transport once approved: bytes pass both ways through the forwarded port', async ({ env, method }) => {
    const refused = await kubectl(stack, 'k8s', alice, ['port-forward', 'pod/web-1', ':8080'], { timeoutMs: 30_000, env });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/twokey: .*request [0-9a-f-]{36}/);
    const before = fixture.state.requests.filter((r) => r.path.endsWith('/portforward')).length;
    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', '/portforward', seenForwards, 30_000);
    seenForwards.add(mail.file);
    expect((await postDecision(mail.link, mail.token, 'approve')).status).toBe(200);
    await decisionDelivered(mail);
    const forwarding = streamKubectl(stack, 'k8s', alice, ['port-forward', 'pod/web-1', ':8080'], env);
    try {
      await forwarding.waitFor(/Forwarding from 127\.0\.0\.1:\d+ -> 8080/);
      const port = Number(/Forwarding from 127\.0\.0\.1:(\d+)/.exec(forwarding.stdout())?.[1]);
      const socket = connect({ host: '127.0.0.1', port });
      let echoed = '';
      socket.on('data', (c: Buffer) => (echoed += c.toString('utf8')));
      socket.write('bytes through the approved forward\n');
      await waitFor(() => (echoed.includes('bytes through the approved forward') ? true : undefined), 20_000, 'the echo through the forward');
      socket.destroy();
    } finally {
      await forwarding.stop();
    }
    const upstream = fixture.state.requests.filter((r) => r.path.endsWith('/portforward')).slice(before);
    expect(upstream.map((r) => `${r.method} ${r.user ?? ''} ${r.status ?? ''}`)).toEqual([`${method} system:serviceaccount:twokey:writer 101`]);
  });

  /** Runs `kubectl exec web-1 -- cat FILES` once bob has approved it (the grant is for one run). */
  async function approvedCat(files: readonly string[], mentions: string): Promise<KubectlResult> {
    const args = ['exec', 'web-1', '--', 'cat', ...files];
    const first = await kubectl(stack, 'k8s', alice, args);
    expect(first.stderr).toMatch(/twokey: .*request [0-9a-f-]{36}/);
    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', mentions, new Set(), 30_000);
    expect((await postDecision(mail.link, mail.token, 'approve')).status).toBe(200);
    // Until the decision reaches the agent over the tunnel, a retry is told the request is still pending.
    return waitFor(async () => {
      const run = await kubectl(stack, 'k8s', alice, args);
      return /sent for approval/.test(run.stderr) ? undefined : run;
    }, 30_000, 'the approved exec');
  }

  /** The asciicast sessions recorded on the target so far. */
  async function terminalSessions(auditor: string): Promise<string[]> {
    stack.agent.context.sessions.closeAll('the test reads the recordings');
    await waitFor(() => (stack.agent.context.recording.pending().sessions === 0 ? true : undefined), 30_000, 'recordings shipped');
    const listed = await twokey(['sessions', 'list', '--target', 'k8s', '--json', '--url', stack.cp.httpUrl], { TWOKEY_TOKEN: auditor });
    return (JSON.parse(listed.stdout) as { sessions: { sessionId: string; format: string }[] }).sessions.filter((s) => s.format === 'asciicast').map((s) => s.sessionId);
  }

  it("records an exec's output up to the cap and notes how much more there was, while the caller gets all of it", async () => {
    // Four files of 750,000 bytes: each one WebSocket message from the fixture, under the agent's message limit.
    const files = ['/big1', '/big2', '/big3', '/big4'];
    for (const f of files) fixture.state.files.set(f, `${'y'.repeat(999)}\n`.repeat(750));
    const erin = await tokenFor(stack.cp, 'erin', ['auditor']);
    const before = new Set(await terminalSessions(erin));
    const ran = await approvedCat(files, '%2Fbig4');
    expect(ran.code).toBe(0);
    expect(ran.stdout).toHaveLength(3_000_000);
    const recorded = (await terminalSessions(erin)).find((id) => !before.has(id));
    const replayed = await twokey(['replay', recorded ?? '', '--url', stack.cp.httpUrl], { TWOKEY_TOKEN: erin });
    expect(replayed.stdout.length).toBe(MAX_RECORDED_OUTPUT_BYTES);
    expect(replayed.stderr).toContain(`${3_000_000 - MAX_RECORDED_OUTPUT_BYTES} more bytes of output not recorded`);
  });

  it('tells the caller on the error channel when the API server sends a message over the limit, not in a corrupt frame', async () => {
    fixture.state.files.set('/huge', 'z'.repeat(MAX_WS_MESSAGE_BYTES + 1));
    const ran = await approvedCat(['/huge'], '%2Fhuge');
    expect(ran.code).not.toBe(0);
    // Was an HTTP 503 written into the WebSocket stream, which kubectl read as a corrupt frame.
    expect(ran.stderr).not.toMatch(/RSV1|FIN not set/);
    expect(ran.stderr).toContain(`twokey: the API server sent a message over ${MAX_WS_MESSAGE_BYTES} bytes`);
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
