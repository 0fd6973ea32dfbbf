import { MAX_RECORDED_OUTPUT_BYTES } from '../../../agent/recording/output-cap';
import { startKubeFixture, type KubeFixture } from '../../support/kube-fixture';
import { MAX_WS_MESSAGE_BYTES } from '../../../agent/kubernetes/websocket-relay';
import { KUBE_TEST_POLICY, kubectl, startKubeStack, type KubectlResult, type KubeStack } from '../../support/kube-stack';
import { postDecision, waitForMail } from '../../support/outbox';
import { tokenFor, waitFor } from '../../support/control-plane';
import { twokey } from '../../support/cli';

/** Files the command prints: four of 750,000 bytes (each one WebSocket message from the fixture, under the agent's message limit). */
const FILES = ['/big1', '/big2', '/big3', '/big4'];
const FILE_BYTES = 750_000;
const OUTPUT_BYTES = FILES.length * FILE_BYTES;

describe('kubectl exec through the agent with large output', () => {
  let fixture: KubeFixture;
  let stack: KubeStack;
  let alice: string;

  beforeAll(async () => {
    fixture = await startKubeFixture({ tokens: { 'read-sa': { user: 'system:serviceaccount:twokey:reader', access: 'read' }, 'write-sa': { user: 'system:serviceaccount:twokey:writer', access: 'write' } } });
    stack = await startKubeStack({ policy: KUBE_TEST_POLICY, targets: ['k8s'], upstream: { url: fixture.url, caPem: fixture.caPem, readToken: 'read-sa', writeToken: 'write-sa' } });
    for (const f of FILES) fixture.state.files.set(f, `${'y'.repeat(999)}\n`.repeat(FILE_BYTES / 1000));
    fixture.state.files.set('/huge', 'z'.repeat(MAX_WS_MESSAGE_BYTES + 1));
    alice = await stack.token('alice', ['support']);
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
    await fixture?.stop();
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

  it("records an exec's output up to the cap and notes how much more there was, while the caller gets all of it", async () => {
    const ran = await approvedCat(FILES, '%2Fbig4');
    expect(ran.code).toBe(0);
    expect(ran.stdout).toHaveLength(OUTPUT_BYTES);

    stack.agent.context.sessions.closeAll('the test reads the recordings');
    await waitFor(() => (stack.agent.context.recording.pending().sessions === 0 ? true : undefined), 30_000, 'recordings shipped');
    const erin = await tokenFor(stack.cp, 'erin', ['auditor']);
    const listed = await twokey(['sessions', 'list', '--target', 'k8s', '--json', '--url', stack.cp.httpUrl], { TWOKEY_TOKEN: erin });
    const terminal = (JSON.parse(listed.stdout) as { sessions: { sessionId: string; format: string }[] }).sessions.find((s) => s.format === 'asciicast');
    const replayed = await twokey(['replay', terminal?.sessionId ?? '', '--url', stack.cp.httpUrl], { TWOKEY_TOKEN: erin });
    expect(replayed.stdout.length).toBe(MAX_RECORDED_OUTPUT_BYTES);
    expect(replayed.stderr).toContain(`${OUTPUT_BYTES - MAX_RECORDED_OUTPUT_BYTES} more bytes of output not recorded`);
  });

  it('tells the caller on the error channel when the API server sends a message over the limit, not in a corrupt frame', async () => {
    const ran = await approvedCat(['/huge'], '%2Fhuge');
    expect(ran.code).not.toBe(0);
    // Was an HTTP 503 written into the WebSocket stream, which kubectl read as a corrupt frame.
    expect(ran.stderr).not.toMatch(/RSV1|FIN not set/);
    expect(ran.stderr).toContain(`twokey: the API server sent a message over ${MAX_WS_MESSAGE_BYTES} bytes`);
  });
});
