import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { ApprovalRecord } from '../../core/approval/request';
import { TUNNEL_PROTOCOL_VERSION, type ControlMessage } from '../../core/tunnel/messages';
import { notifyAgent } from '../../lambdas/domain/approvals';
import { onAgentMessage } from '../../lambdas/domain/tunnel';
import { getRuntime } from '../../lambdas/shared/runtime';
import { DECIDED_APPROVAL_RETENTION_DAYS } from '../../lambdas/store/approval-store';
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

  it('answers a forged page token with 400', async () => {
    const erin = await tokenFor(cp, 'erin', ['auditor']);
    const res = await api(cp, erin, 'GET', `/sessions?next=${Buffer.from('{"partition":"drop table"}').toString('base64url')}`);
    expect(res.status).toBe(400);
    const root = await tokenFor(cp, 'root', ['admin']);
    expect((await api(cp, root, 'GET', '/agents?next=not%20a%20token')).status).toBe(400);
    expect((await api(cp, root, 'GET', '/agents?limit=many')).status).toBe(400);
  });
});
