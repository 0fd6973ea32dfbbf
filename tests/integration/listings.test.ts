import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { ApprovalRecord, ApprovalSummary } from '../../core/approval/request';
import { TUNNEL_PROTOCOL_VERSION, type ControlMessage } from '../../core/tunnel/messages';
import { notifyAgent } from '../../lambdas/domain/approvals';
import { onAgentMessage } from '../../lambdas/domain/tunnel';
import { getRuntime } from '../../lambdas/shared/runtime';
import { DECIDED_APPROVAL_RETENTION_DAYS, MAX_PREVIEW_CHARS } from '../../lambdas/store/approval-store';
import { CONNECTION_RECORD_TTL_SECONDS } from '../../lambdas/store/dynamo-stores';
import type { SessionRecord } from '../../lambdas/store/session-store';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/aws/credentials';
import type { LocalControlPlane } from '../../local/control-plane';
import { twokey } from '../support/cli';
import { api, startTestControlPlane, TEST_POLICY, tokenFor } from '../support/control-plane';

const approval = (requestId: string, agent: string): ApprovalRecord => ({
  requestId,
  agent,
  kind: 'statement',
  target: agent === 'edge-1' ? 'orders-db' : 'other-db',
  protocol: 'postgres',
  text: 'UPDATE t SET x = 1 WHERE id = 1',
  sha256: 'a'.repeat(64),
  class: 'write',
  rule: 'support',
  requester: { issuer: 'https://issuer.test', subject: 'alice', name: 'Alice', groups: ['support'] },
  approval: { groups: ['dba'], min: 1, timeoutSeconds: 900 },
  status: 'pending',
  reviewers: [{ issuer: 'https://issuer.test', subject: 'bob', email: 'bob@example.com' }],
  votes: {},
  createdAt: '2026-12-01T10:00:00.000Z',
  expiresAt: '2026-12-01T10:15:00.000Z',
  linksSent: true,
  delivered: false,
});

describe('listings and lookups on hot paths (local stack: dynalite)', () => {
  let cp: LocalControlPlane;
  let raw: DynamoDBDocumentClient;
  const deps = () => getRuntime('test').deps;
  /** The DynamoDB commands the handlers send while `work` runs. */
  const commandsDuring = async (work: () => Promise<unknown>): Promise<string[]> => {
    const send = jest.spyOn(DynamoDBDocumentClient.prototype, 'send');
    try {
      await work();
      return send.mock.calls.map(([command]) => command.constructor.name);
    } finally {
      send.mockRestore();
    }
  };

  beforeAll(async () => {
    cp = await startTestControlPlane(undefined, 0, false);
    await deps().policies.putVersion({ version: 1, source: TEST_POLICY, updatedAt: new Date().toISOString(), updatedBy: 'root' });
    raw = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: cp.dynamo.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS }));
  });
  afterAll(async () => {
    raw.destroy();
    await cp.stop();
  });

  it("answers an agent's hello with its undelivered decisions, and sends a decision to its agent's connections, without a table scan", async () => {
    for (const [id, agent] of [['req-edge1-a', 'edge-1'], ['req-edge2-a', 'edge-2'], ['req-edge1-b', 'edge-1']] as const) {
      await deps().approvals.create(approval(id, agent));
      await deps().approvals.finalize(id, 'approved', '2026-12-01T10:05:00.000Z');
    }
    await deps().approvals.markDelivered('req-edge1-b');
    await deps().agents.create({ name: 'edge-1', keyHash: 'x', createdAt: new Date().toISOString(), createdBy: 'root', targets: [] }, false);
    await deps().connections.put({ connectionId: 'conn-edge1', agent: 'edge-1', connectedAt: new Date().toISOString() });
    await deps().connections.put({ connectionId: 'conn-edge2', agent: 'edge-2', connectedAt: new Date().toISOString() });
    const sent: [string, ControlMessage][] = [];
    const capture = { ...deps(), push: async (id: string, m: ControlMessage) => (sent.push([id, m]), 'sent' as const) };

    const helloCommands = await commandsDuring(() => onAgentMessage(capture, 'conn-edge1', JSON.stringify({ type: 'hello', v: TUNNEL_PROTOCOL_VERSION, agentVersion: 't', targets: ['orders-db'] })));
    const decisions = sent.filter(([, m]) => m.type === 'approval.decision').map(([, m]) => (m as { requestId: string }).requestId);
    expect(decisions).toEqual(['req-edge1-a']);
    expect(helloCommands).not.toContain(ScanCommand.name);

    sent.length = 0;
    const notifyCommands = await commandsDuring(() => notifyAgent(capture, 'req-edge2-a'));
    expect(sent.map(([id]) => id)).toEqual(['conn-edge2']);
    expect(notifyCommands).not.toContain(ScanCommand.name);
  });

  it('gives connection records and decided requests a TTL (the connection limit, the retention)', async () => {
    const connectedAt = '2026-12-01T10:00:00.000Z';
    await deps().connections.put({ connectionId: 'conn-ttl', agent: 'edge-1', connectedAt });
    const connection = await raw.send(new GetCommand({ TableName: cp.dynamo.tableNames.connections, Key: { connectionId: 'conn-ttl' } }));
    expect(connection.Item?.ttl).toBe(Date.parse(connectedAt) / 1000 + CONNECTION_RECORD_TTL_SECONDS);
    await deps().approvals.create(approval('req-ttl', 'edge-1'));
    expect((await raw.send(new GetCommand({ TableName: cp.dynamo.tableNames.approvals, Key: { requestId: 'req-ttl' } }))).Item?.ttl).toBeUndefined();
    await deps().approvals.finalize('req-ttl', 'denied', '2026-12-01T10:05:00.000Z');
    const decided = await raw.send(new GetCommand({ TableName: cp.dynamo.tableNames.approvals, Key: { requestId: 'req-ttl' } }));
    expect(decided.Item?.ttl).toBe(Date.parse('2026-12-01T10:05:00.000Z') / 1000 + DECIDED_APPROVAL_RETENTION_DAYS * 86_400);
  });

  it('lists every session a page at a time, newest first across months, by index, and follows the page tokens to the end', async () => {
    const starts = ['2026-10-03T08:00:00.000Z', '2026-10-20T08:00:00.000Z', '2026-11-02T08:00:00.000Z', '2026-11-30T08:00:00.000Z', '2026-12-01T08:00:00.000Z'];
    for (const [i, startedAt] of starts.entries()) {
      const session: SessionRecord = {
        sessionId: `22222222-2222-4333-8444-${String(i).padStart(12, '0')}`,
        agent: 'edge-1',
        target: i % 2 ? 'orders-db' : 'other-db',
        protocol: 'postgres',
        format: 'ndjson',
        user: `user-${i}`,
        identity: { subject: `user-${i}`, name: 'U', groups: [] },
        startedAt,
        status: 'complete',
        prefix: `recordings/x/${i}/`,
      };
      await deps().sessions.create(session);
    }
    const erin = await tokenFor(cp, 'erin', ['auditor']);
    const seen: string[] = [];
    const pages: number[] = [];
    let next: string | undefined;
    const commands = await commandsDuring(async () => {
      do {
        const q = new URLSearchParams({ from: '2026-09-01', to: '2026-12-31T23:59:59Z', limit: '2', ...(next ? { next } : {}) });
        const res = await api(cp, erin, 'GET', `/sessions?${q}`);
        expect(res.status).toBe(200);
        const page = res.body as { sessions: SessionRecord[]; next?: string };
        pages.push(page.sessions.length);
        seen.push(...page.sessions.map((s) => s.startedAt));
        next = page.next;
      } while (next);
    });
    expect(seen).toEqual([...starts].reverse());
    expect(Math.max(...pages)).toBe(2);
    expect(commands).not.toContain(ScanCommand.name);
  });

  it('lists agents a page at a time through the CLI (--limit, --next) until the last', async () => {
    for (const name of ['page-a', 'page-b', 'page-c']) await deps().agents.create({ name, keyHash: 'x', createdAt: new Date().toISOString(), createdBy: 'root', targets: [] }, false);
    const root = await tokenFor(cp, 'root', ['admin']);
    const names: string[] = [];
    let next: string | undefined;
    let pages = 0;
    do {
      const out = await twokey(['agents', 'list', '--json', '--limit', '2', ...(next ? ['--next', next] : []), '--url', cp.httpUrl], { TWOKEY_TOKEN: root });
      expect(out.code).toBe(0);
      const page = JSON.parse(out.stdout) as { agents: { name: string }[]; next?: string };
      expect(page.agents.length).toBeLessThanOrEqual(2);
      names.push(...page.agents.map((a) => a.name));
      next = page.next;
      pages++;
    } while (next && pages < 10);
    expect(names.filter((n) => n.startsWith('page-')).sort()).toEqual(['page-a', 'page-b', 'page-c']);
    expect(new Set(names).size).toBe(names.length);
    expect(pages).toBeGreaterThanOrEqual(2);
  });

  describe('GET /approvals', () => {
    /** A request made by `requester` for `reviewers` (subjects at the local issuer), made at `createdAt`. */
    const request = (requestId: string, requester: string, reviewers: string[], createdAt: string, extra: Partial<ApprovalRecord> = {}): ApprovalRecord => ({
      ...approval(requestId, 'edge-1'),
      requester: { issuer: cp.issuer, subject: requester, name: requester, groups: ['support'] },
      reviewers: reviewers.map((subject) => ({ issuer: cp.issuer, subject, email: `${subject}@example.com` })),
      createdAt,
      expiresAt: new Date(Date.parse(createdAt) + 900_000).toISOString(),
      ...extra,
    });
    /** Every page of GET /approvals for `token`, `limit` at a time: the ids in order and each page's size. */
    const everyPage = async (token: string, limit: number): Promise<{ ids: string[]; sizes: number[]; entries: ApprovalSummary[] }> => {
      const entries: ApprovalSummary[] = [];
      const sizes: number[] = [];
      let next: string | undefined;
      do {
        const res = await api(cp, token, 'GET', `/approvals?${new URLSearchParams({ limit: String(limit), ...(next ? { next } : {}) })}`);
        expect(res.status).toBe(200);
        const page = res.body as { approvals: ApprovalSummary[]; next?: string };
        sizes.push(page.approvals.length);
        entries.push(...page.approvals);
        next = page.next;
      } while (next && sizes.length < 50);
      return { ids: entries.map((e) => e.requestId), sizes, entries };
    };
    const made = [
      ['ap-1', 'amy', ['ben'], '2026-10-05T09:00:00.000Z'],
      ['ap-2', 'cal', ['ben', 'dee'], '2026-10-20T09:00:00.000Z'],
      ['ap-3', 'amy', ['dee'], '2026-11-02T09:00:00.000Z'],
      ['ap-4', 'dee', ['ben'], '2026-11-28T09:00:00.000Z'],
      ['ap-5', 'ben', ['amy'], '2026-12-01T09:00:00.000Z'],
    ] as const;

    beforeAll(async () => {
      for (const [id, requester, reviewers, createdAt] of made) await deps().approvals.create(request(id, requester, [...reviewers], createdAt));
    });

    it('lists the requests a caller made or reviews, newest first, a page at a time, by their inbox and never a table scan', async () => {
      const ben = await tokenFor(cp, 'ben', ['dba']);
      let listed: Awaited<ReturnType<typeof everyPage>> | undefined;
      const commands = await commandsDuring(async () => (listed = await everyPage(ben, 2)));
      expect(listed?.ids).toEqual(['ap-5', 'ap-4', 'ap-2', 'ap-1']);
      expect(Math.max(...(listed?.sizes ?? []))).toBe(2);
      expect(commands).not.toContain(ScanCommand.name);
    });

    it("never lists another caller's requests, whatever page token they send", async () => {
      const amy = await tokenFor(cp, 'amy', ['support']);
      expect((await everyPage(await tokenFor(cp, 'zed', ['dba']), 10)).ids).toEqual([]);
      // amy's subject at another issuer is someone else.
      await deps().approvals.create({ ...request('ap-other-issuer', 'amy', ['ivy'], '2026-12-03T09:00:00.000Z'), requester: { issuer: 'https://other.test', subject: 'amy', name: 'amy', groups: [] } });
      expect((await everyPage(amy, 10)).ids).toEqual(['ap-5', 'ap-3', 'ap-1']);
      // A position in ben's inbox does not open it to amy.
      const ben = await tokenFor(cp, 'ben', ['dba']);
      const benPage = (await api(cp, ben, 'GET', '/approvals?limit=1')).body as { next?: string };
      expect(benPage.next).toBeDefined();
      const res = await api(cp, amy, 'GET', `/approvals?next=${benPage.next}`);
      expect(res.status).toBe(400);
    });

    it('lists every request for admins and policy changes and their own for auditors, newest first across months, by index', async () => {
      await deps().approvals.create(request('ap-change', 'root', ['grace'], '2026-11-15T09:00:00.000Z', { kind: 'policy-change', target: 'policy' }));
      const root = await tokenFor(cp, 'root', ['admin']);
      let all: Awaited<ReturnType<typeof everyPage>> | undefined;
      const commands = await commandsDuring(async () => (all = await everyPage(root, 2)));
      expect(all?.ids.filter((id) => /^ap-(\d|change)/.test(id))).toEqual(['ap-5', 'ap-4', 'ap-change', 'ap-3', 'ap-2', 'ap-1']);
      expect(Math.max(...(all?.sizes ?? []))).toBe(2);
      expect(commands).not.toContain(ScanCommand.name);
      const dee = await tokenFor(cp, 'dee', ['auditor']);
      expect((await everyPage(dee, 2)).ids).toEqual(['ap-4', 'ap-change', 'ap-3', 'ap-2']);
    });

    it('lists summaries: a short preview and no policy text or diff, however large the request', async () => {
      const yaml = `version: 1\n# ${'x'.repeat(200_000)}\n`;
      const policyChange = { baseVersion: 1, diff: `+${'y'.repeat(100_000)}`, diffTruncated: false, added: 1, removed: 0 };
      await deps().approvals.create(request('ap-large', 'fay', ['gil'], '2026-12-02T09:00:00.000Z', { kind: 'policy-change', target: 'policy', text: yaml, policyChange }));
      const [entry] = (await everyPage(await tokenFor(cp, 'gil', ['admin-reviewer']), 10)).entries;
      expect(entry).toMatchObject({ requestId: 'ap-large', preview: yaml.slice(0, MAX_PREVIEW_CHARS), policyChange: { baseVersion: 1, added: 1, removed: 0 } });
      expect(entry && 'text' in entry).toBe(false);
      expect(JSON.stringify(entry).length).toBeLessThan(2_000);
    });

    it('does not list a request whose retention has passed before DynamoDB has deleted it', async () => {
      await deps().approvals.create(request('ap-old', 'hal', ['ida'], '2025-10-01T09:00:00.000Z'));
      await deps().approvals.finalize('ap-old', 'approved', '2025-10-01T09:05:00.000Z');
      expect((await everyPage(await tokenFor(cp, 'hal', ['support']), 10)).ids).toEqual([]);
      expect((await everyPage(await tokenFor(cp, 'root', ['admin']), 100)).ids).not.toContain('ap-old');
    });

    it('pages through twokey approvals list with --limit and --next', async () => {
      const ben = await tokenFor(cp, 'ben', ['dba']);
      const first = await twokey(['approvals', 'list', '--limit', '3', '--url', cp.httpUrl], { TWOKEY_TOKEN: ben });
      expect(first.code).toBe(0);
      expect(first.stdout.split('\n').filter((l) => l.startsWith('ap-'))).toHaveLength(3);
      const next = /--next (\S+)/.exec(first.stderr)?.[1];
      expect(next).toBeDefined();
      const second = await twokey(['approvals', 'list', '--json', '--limit', '3', '--next', next ?? '', '--url', cp.httpUrl], { TWOKEY_TOKEN: ben });
      expect((JSON.parse(second.stdout) as { approvals: ApprovalSummary[]; next?: string })).toMatchObject({ approvals: [{ requestId: 'ap-1' }] });
      expect((JSON.parse(second.stdout) as { next?: string }).next).toBeUndefined();
    });
  });

  it('answers a forged page token with 400', async () => {
    const erin = await tokenFor(cp, 'erin', ['auditor']);
    const res = await api(cp, erin, 'GET', `/sessions?next=${Buffer.from('{"partition":"drop table"}').toString('base64url')}`);
    expect(res.status).toBe(400);
    // A position in another month than the one it names: DynamoDB would refuse the start key (a 500).
    const elsewhere = { partition: '2026-12', key: { sessionId: 's', month: '2026-11', startedAt: '2026-11-02T08:00:00.000Z' } };
    expect((await api(cp, erin, 'GET', `/sessions?next=${Buffer.from(JSON.stringify(elsewhere)).toString('base64url')}`)).status).toBe(400);
    const root = await tokenFor(cp, 'root', ['admin']);
    expect((await api(cp, root, 'GET', '/agents?next=not%20a%20token')).status).toBe(400);
    expect((await api(cp, root, 'GET', '/agents?limit=many')).status).toBe(400);
  });

  it("answers another listing's page token with 400, not a DynamoDB error", async () => {
    const erin = await tokenFor(cp, 'erin', ['auditor']);
    const token = (position: object): string => Buffer.from(JSON.stringify(position)).toString('base64url');
    // The approvals listing's position (another table key) on /sessions.
    const approvalsPosition = { partition: '2026-12', key: { requestId: 'ap-1', month: '2026-12', createdAt: '2026-12-01T09:00:00.000Z' } };
    expect((await api(cp, erin, 'GET', `/sessions?next=${token(approvalsPosition)}`)).status).toBe(400);
    // A by-target position continued on another target (outside the queried partition).
    const byTarget = { key: { sessionId: 's', target: 'other-db', startedAt: '2026-11-02T08:00:00.000Z' } };
    expect((await api(cp, erin, 'GET', `/sessions?target=orders-db&next=${token(byTarget)}`)).status).toBe(400);
    expect((await api(cp, erin, 'GET', `/sessions?target=orders-db&next=${token({ key: { sessionId: 's' } })}`)).status).toBe(400);
    const root = await tokenFor(cp, 'root', ['admin']);
    expect((await api(cp, root, 'GET', `/agents?next=${token({ key: { sessionId: 's' } })}`)).status).toBe(400);
    expect((await api(cp, root, 'GET', `/agents?next=${token({ partition: '2026-12', key: { name: 'a' } })}`)).status).toBe(400);
  });
});
