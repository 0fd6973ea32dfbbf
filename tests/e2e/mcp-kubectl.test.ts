import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { startKubeFixture, type KubeFixture } from '../support/kube-fixture';
import { KUBE_TEST_POLICY, startKubeStack, type KubeStack } from '../support/kube-stack';
import { waitFor } from '../support/control-plane';
import { MAX_PENDING_EXECUTIONS_PER_CALLER } from '../../agent/mcp/held-executions';
import { callTool, McpCallers } from '../support/mcp-client';
import { postDecision, waitForMail } from '../support/outbox';

const READ_SA = 'read-sa-token';
const WRITE_SA = 'write-sa-token';

describe('the kubectl tool through the MCP endpoint (official SDK client, the fixture API server upstream)', () => {
  let fixture: KubeFixture;
  let stack: KubeStack;
  let callers: McpCallers;
  const connect = (user: string, groups: string[], name?: string): Promise<Client> => callers.connect(user, groups, name);

  beforeAll(async () => {
    fixture = await startKubeFixture({ tokens: { [READ_SA]: { user: 'system:serviceaccount:twokey:reader', access: 'read' }, [WRITE_SA]: { user: 'system:serviceaccount:twokey:writer', access: 'write' } } });
    stack = await startKubeStack({ policy: KUBE_TEST_POLICY, targets: ['k8s'], upstream: { url: fixture.url, caPem: fixture.caPem, readToken: READ_SA, writeToken: WRITE_SA }, mcp: true });
    callers = new McpCallers(stack);
  }, 120_000);
  afterAll(async () => {
    await callers?.closeAll();
    await stack?.stop();
    await fixture?.stop();
  });

  const upstreamWrites = (pathPart: string) => fixture.state.requests.filter((r) => r.path.includes(pathPart) && r.method !== 'GET').map((r) => `${r.method} ${r.user ?? ''}`);

  it('gets a Secret with its values masked, on the read service account', async () => {
    const alice = await connect('alice', ['support']);
    const got = await callTool(alice, 'kubectl', { target: 'k8s', verb: 'get', resource: 'secrets', namespace: 'default', name: 'db-credentials' });
    expect(got.isError).toBe(false);
    expect(got.json.status).toBe(200);
    expect(got.json.object.data.password).toBe(Buffer.from('****').toString('base64'));
    expect(got.text).not.toContain(Buffer.from('s3cr3t-Pa55w0rd').toString('base64'));
  });

  it('refuses a write the policy denies with the listener\'s Forbidden message, and a malformed form before sending', async () => {
    const vic = await connect('vic', ['viewer']);
    const denied = await callTool(vic, 'kubectl', { target: 'k8s', verb: 'delete', resource: 'pods', namespace: 'default', name: 'web-1' });
    expect(denied.isError).toBe(true);
    expect(denied.text).toMatch(/^twokey: /);
    expect(upstreamWrites('/pods/web-1')).toEqual([]);
    const malformed = await callTool(vic, 'kubectl', { target: 'k8s', verb: 'get', resource: 'pods', namespace: 'default' });
    expect(malformed).toMatchObject({ isError: true, text: 'twokey: get needs a name' });
    const shell = await callTool(vic, 'kubectl', { target: 'k8s', verb: 'get', resource: 'pods; rm -rf /', name: 'x' });
    expect(shell.isError).toBe(true);
  });

  /** Polls kubectl_request_status until the request is no longer pending. */
  const decided = (client: Client, requestId: string) =>
    waitFor(async () => {
      const status = await callTool(client, 'kubectl_request_status', { target: 'k8s', request_id: requestId });
      return status.json?.status === 'pending_approval' ? undefined : status;
    }, 30_000, `the decision on ${requestId}`);

  it('holds a create as an AI agent\'s, returns its request id, reviewers and expiry, and reports the approved run in kubectl_request_status', async () => {
    const alice = await connect('alice', ['support'], 'claude-code');
    const body = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'mcp-config', namespace: 'default' }, data: { mode: 'approved' } };
    const before = Date.now();
    const held = await callTool(alice, 'kubectl', { target: 'k8s', verb: 'create', resource: 'configmaps', namespace: 'default', body });
    expect(held.json).toMatchObject({ status: 'pending_approval', reviewers: ['ops'], request_id: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    const expires = Date.parse(held.json.expires_at as string);
    expect(expires).toBeGreaterThanOrEqual(before + 600_000 - 1_000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 600_000 + 1_000);
    expect((await callTool(alice, 'kubectl_request_status', { target: 'k8s', request_id: held.json.request_id })).json).toMatchObject({ status: 'pending_approval', request_id: held.json.request_id });
    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', 'mcp-config', new Set(), 30_000);
    expect(mail.text).toContain('Sent by: an AI agent through MCP (client: claude-code 1.0.0)');
    expect(mail.text).toContain(held.json.request_id);
    expect(upstreamWrites('/configmaps')).toEqual([]);
    expect((await postDecision(mail.link, mail.token, 'approve')).status).toBe(200);
    const status = await decided(alice, held.json.request_id);
    expect(status.json).toMatchObject({ status: 'approved', request_id: held.json.request_id, result: { http_status: 201, object: { kind: 'ConfigMap', metadata: { name: 'mcp-config' }, data: { mode: 'approved' } } } });
    expect(upstreamWrites('/configmaps')).toEqual(['POST system:serviceaccount:twokey:writer']);
    const other = await connect('bob', ['support']);
    expect(await callTool(other, 'kubectl_request_status', { target: 'k8s', request_id: held.json.request_id })).toMatchObject({ isError: true, text: `twokey: no request ${held.json.request_id} of yours through MCP on k8s` });
  });

  it('holds a scale and a server-side apply, and returns the approved result within the call that waits for it', async () => {
    const alice = await connect('alice', ['support']);
    const scaled = callTool(alice, 'kubectl', { target: 'k8s', verb: 'scale', group: 'apps', resource: 'deployments', namespace: 'default', name: 'web', replicas: 5, wait_seconds: 50 });
    const scaleMail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', '/deployments/web/scale', new Set(), 30_000);
    expect((await postDecision(scaleMail.link, scaleMail.token, 'approve')).status).toBe(200);
    const answer = await scaled;
    expect(answer.json).toMatchObject({ status: 'approved', request_id: expect.stringMatching(/^[0-9a-f-]{36}$/), http_status: 200, object: { kind: 'Scale', spec: { replicas: 5 } } });
    expect((await callTool(alice, 'kubectl_request_status', { target: 'k8s', request_id: answer.json.request_id })).json).toMatchObject({ status: 'approved', result: { http_status: 200, object: { spec: { replicas: 5 } } } });

    const manifest = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'mcp-applied', namespace: 'default' }, data: { by: 'apply' } };
    const held = await callTool(alice, 'kubectl', { target: 'k8s', verb: 'apply', resource: 'configmaps', namespace: 'default', name: 'mcp-applied', body: manifest });
    expect(held.json).toMatchObject({ status: 'pending_approval', reviewers: ['ops'] });
    const applyMail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', 'mcp-applied', new Set(), 30_000);
    expect((await postDecision(applyMail.link, applyMail.token, 'approve')).status).toBe(200);
    expect((await decided(alice, held.json.request_id)).json).toMatchObject({ status: 'approved', result: { object: { metadata: { name: 'mcp-applied' }, data: { by: 'apply' } } } });
  });

  it('reports a denied write in kubectl_request_status with the reviewer and comment, and nothing reaches the API server', async () => {
    const alice = await connect('alice', ['support']);
    const held = await callTool(alice, 'kubectl', { target: 'k8s', verb: 'delete', resource: 'pods', namespace: 'default', name: 'web-1' });
    expect(held.json).toMatchObject({ status: 'pending_approval' });
    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', '/pods/web-1', new Set(), 30_000);
    expect((await postDecision(mail.link, mail.token, 'deny', 'not during the sale')).status).toBe(200);
    const status = await decided(alice, held.json.request_id);
    expect(status.json).toEqual({ status: 'denied', request_id: held.json.request_id, message: `twokey: request ${held.json.request_id} denied by bob@example.com: not during the sale` });
    expect(upstreamWrites('/pods/web-1')).toEqual([]);
  });

  it('refuses a caller\'s write while they already have the most writes awaiting review through MCP', async () => {
    const carl = await connect('carl', ['support']);
    const create = (i: number) => callTool(carl, 'kubectl', { target: 'k8s', verb: 'create', resource: 'configmaps', namespace: 'default', body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `carl-${i}` } } });
    for (let i = 0; i < MAX_PENDING_EXECUTIONS_PER_CALLER; i++) expect((await create(i)).json).toMatchObject({ status: 'pending_approval' });
    expect(await create(MAX_PENDING_EXECUTIONS_PER_CALLER)).toMatchObject({ isError: true, text: `twokey: you have ${MAX_PENDING_EXECUTIONS_PER_CALLER} requests awaiting review through MCP, the most one caller may` });
    const alice = await connect('alice', ['support']);
    expect((await callTool(alice, 'kubectl', { target: 'k8s', verb: 'list', resource: 'pods', namespace: 'default' })).isError).toBe(false);
  });
});
