import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type Socket } from 'node:net';
import { startAgent, type RunningAgent } from '../../agent/agent';
import type { ProtocolListener } from '../../agent/agent';
import { decodeChunk } from '../../core/recording/chunk';
import type { LocalControlPlane } from '../../local/control-plane';
import { devIssuerConfig, withDevIssuer } from '../../local/oidc/dev-issuer';
import { twokey } from '../support/cli';
import { api, startTestControlPlane, tokenFor, waitFor } from '../support/control-plane';
import { postDecision, waitForMail } from '../support/outbox';
import { LineFramer } from '../support/line-protocol/codec';
import { startLineListener, type LineStore } from '../support/line-protocol/listener';

const POLICY = `
targets:
  - { name: notes, protocol: ssh, agent: line-agent }
reviewers: { dba: [{ subject: bob, email: bob@example.com }] }
rules:
  - name: support
    targets: [notes]
    subjects: { groups: [support] }
    actions: { read: allow, control: allow, write: { approve: { groups: [dba], min: 1, timeoutSeconds: 900 } } }
  - name: careful
    targets: [notes]
    subjects: { users: [rita] }
    actions: { read: allow, write: { approve: { groups: [dba], min: 1, requireReason: true } } }
blocks:
  - { name: no-secrets, targets: [notes], commands: ['SET secret*'] }
masks:
  - { name: cards, targets: [notes], subjects: { groups: [support] }, columns: [store.card], detectors: [email], style: partial }
`;

/** A client of the line protocol: sends lines, reads reply lines in order. */
class LineClient {
  private readonly lines: string[] = [];
  private readonly framer = new LineFramer();
  private wake: (() => void) | undefined;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.framer.push(chunk, (line) => this.lines.push(line));
      this.wake?.();
    });
  }

  static async open(endpoint: string): Promise<LineClient> {
    const [host, port] = endpoint.split(':');
    const socket = connect({ host, port: Number(port) });
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    return new LineClient(socket);
  }

  send(line: string): void {
    this.socket.write(`${line}\n`);
  }

  async next(timeoutMs = 20_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (this.lines.length === 0) {
      if (Date.now() > deadline) throw new Error('no reply');
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 100);
      });
    }
    return this.lines.shift() as string;
  }

  async ask(line: string): Promise<string> {
    this.send(line);
    return this.next();
  }
}

describe('a protocol written against the shared session layer (the line test protocol)', () => {
  let cp: LocalControlPlane;
  let agent: RunningAgent;
  let listener: ProtocolListener;
  let stateDir: string;
  const store: LineStore = new Map([['card', '4111 1111 1111 1111'], ['contact', 'write to ann@example.com']]);
  let erin: string;

  beforeAll(async () => {
    cp = await startTestControlPlane();
    const root = await tokenFor(cp, 'root', ['admin']);
    await api(cp, root, 'PUT', '/policies', withDevIssuer(POLICY, cp.issuer), { 'if-match': '"0"' });
    process.env.LINE_AGENT_KEY = (await api(cp, root, 'POST', '/agents', JSON.stringify({ name: 'line-agent' }))).body.key as string;
    stateDir = mkdtempSync(join(tmpdir(), 'tk-line-agent-'));
    const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
    agent = await startAgent(
      { name: 'line-agent', controlPlane: { url: cp.wsUrl, keyEnv: 'LINE_AGENT_KEY' }, stateDir, identity: { issuers: [devIssuerConfig(cp.issuer, 'data')] }, targets: [] },
      { log: quiet },
    );
    await waitFor(() => agent.policy.policy, 30_000, 'policy');
    listener = await startLineListener('notes', agent.context, store);
    erin = await tokenFor(cp, 'erin', ['auditor']);
  }, 120_000);
  afterAll(async () => {
    await listener?.stop();
    await agent?.stop();
    await cp?.stop();
    rmSync(stateDir, { recursive: true, force: true });
  });

  async function login(user: string, groups: string[]): Promise<{ client: LineClient; sessionId: string }> {
    const client = await LineClient.open(listener.endpoint);
    const ready = await client.ask(`AUTH ${await tokenFor(cp, user, groups, { audience: 'data' })}`);
    expect(ready).toMatch(/^READY [0-9a-f-]{36}$/);
    return { client, sessionId: ready.slice('READY '.length) };
  }

  it('refuses a caller without a valid token before anything else', async () => {
    const client = await LineClient.open(listener.endpoint);
    expect(await client.ask('AUTH not-a-token')).toBe('ERR twokey: authentication failed');
  });

  it('reads through the masking handle: a masked field by its rule, anything else by the detectors', async () => {
    const { client } = await login('alice', ['support']);
    expect(await client.ask('GET card')).toBe('VALUE ****1111');
    expect(await client.ask('GET contact')).toMatch(/^VALUE write to (?!ann@example\.com)\S+$/);
    expect(await client.ask('ECHO hello')).toBe('OK hello');
    expect(await client.ask('QUIT')).toBe('OK bye');
  });

  it('counts the session in the registry while it runs, and forgets it when it ends', async () => {
    const { client } = await login('alice', ['support']);
    expect(agent.context.sessions.count('notes')).toBe(1);
    expect(await client.ask('QUIT')).toBe('OK bye');
    await waitFor(() => (agent.context.sessions.count('notes') === 0 ? true : undefined), 5_000, 'session removed');
  });

  it('refuses what a block names, with the block in the reason', async () => {
    const { client } = await login('alice', ['support']);
    expect(await client.ask('SET secret-key x')).toBe('ERR twokey: blocked by no-secrets (SET secret-key x)');
    expect(await client.ask('QUIT')).toBe('OK bye');
  });

  it('holds a write until a reviewer approves it from the mail link, then runs it once', async () => {
    const { client } = await login('alice', ['support']);
    client.send('SET greeting approved hello');
    expect(await client.next()).toMatch(/^NOTICE twokey: approval required, request [0-9a-f-]{36}, sent to dba, waiting up to 900s$/);
    const mail = await waitForMail(cp.outboxDir, 'bob@example.com', 'SET greeting approved hello');
    expect(store.has('greeting')).toBe(false);
    expect((await postDecision(mail.link, mail.token, 'approve')).status).toBe(200);
    expect(await client.next()).toMatch(/^NOTICE twokey: request [0-9a-f-]{36} approved by bob@example.com; running it once on the write credential$/);
    expect(await client.next()).toBe('OK set greeting');
    expect(store.get('greeting')).toBe('approved hello');
    expect(await client.ask('QUIT')).toBe('OK bye');
  });

  it('refuses to send a write without the reason the policy requires, saying how to give one', async () => {
    const { client } = await login('rita', []);
    expect(await client.ask('SET a b')).toBe("ERR twokey: this command needs a reason before it can be sent for approval (Send REASON <why> first.)");
    expect(await client.ask('QUIT')).toBe('OK bye');
  });

  it('records the session through the shared recorder: start, decisions, approval steps and end, masked', async () => {
    const { client, sessionId } = await login('alice', ['support']);
    await client.ask('GET card');
    client.send('SET mood fine');
    await client.next();
    const mail = await waitForMail(cp.outboxDir, 'bob@example.com', 'SET mood fine');
    await postDecision(mail.link, mail.token, 'deny', 'not today');
    expect(await client.next()).toMatch(/^ERR twokey: request [0-9a-f-]{36} denied by bob@example.com: not today$/);
    expect(await client.ask('QUIT')).toBe('OK bye');
    await waitFor(() => (agent.context.recording.pending().sessions === 0 ? true : undefined), 20_000, 'recording shipped');
    const file = join(stateDir, 'download.json');
    const got = await twokey(['recording', 'get', sessionId, '-o', file, '--url', cp.httpUrl], { TWOKEY_TOKEN: erin });
    expect(got.stderr).toMatch(/verified: 1 chunk/);
    const { chunks } = JSON.parse(readFileSync(file, 'utf8')) as { chunks: string[] };
    const events = chunks.flatMap((c, i) => {
      const decoded = decodeChunk(Buffer.from(c, 'base64'), i);
      if (!decoded.ok) throw new Error(decoded.error.reason);
      return decoded.value.body.toString('utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    });
    expect(events.map((e) => [e.e, e.decision ?? e.outcome ?? e.text ?? e.reason ?? ''])).toEqual([
      ['session.start', ''],
      ['decision', 'allow'],
      ['output', '****1111'],
      ['decision', 'approve'],
      ['approval', 'requested'],
      ['approval', 'denied'],
      ['session.end', 'client quit'],
    ]);
    expect(JSON.stringify(events)).not.toContain('4111 1111 1111 1111');
  });
});
