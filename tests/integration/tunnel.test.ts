import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { startAgent, type RunningAgent } from '../../agent/agent';
import type { AgentConfig } from '../../agent/config';
import type { LocalControlPlane } from '../../local/control-plane';
import { devIssuerConfig } from '../../local/oidc/dev-issuer';
import { api, openTunnel, startTestControlPlane, TEST_POLICY, tokenFor, waitFor } from '../support/control-plane';
import { identity } from '../support/identities';
import { changePolicy, withAdmins } from '../support/policy-change';

const quietLog = { info: () => undefined, warn: () => undefined, error: () => undefined };

function agentConfig(cp: LocalControlPlane, stateDir: string, targets: string[] = ['orders-db']): AgentConfig {
  return {
    name: 'edge-1',
    controlPlane: { url: cp.wsUrl, keyEnv: 'TEST_EDGE1_KEY' },
    stateDir,
    identity: { issuers: [devIssuerConfig(cp.issuer, 'data')] },
    targets: targets.map((name, i) => ({
      name,
      protocol: 'postgres' as const,
      listen: { host: '127.0.0.1', port: 0 },
      upstream: { host: '127.0.0.1', port: 5432 + i },
      readCredential: { user: 'r' },
      writeCredential: { user: 'w' },
    })),
  };
}

/** A listener factory that binds nothing: the tunnel tests need only the target names. */
const stubListener = { postgres: async (t: AgentConfig['targets'][number]) => ({ target: t.name, endpoint: 'none', stop: async () => undefined }) };

describe('agent <-> local control plane over a real WebSocket', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tk-cp-'));
  let cp: LocalControlPlane;
  let root: string;
  let agent: RunningAgent;
  let agentKey: string;
  let policy: string;

  beforeAll(async () => {
    cp = await startTestControlPlane(dataDir);
    root = await tokenFor(cp, 'root', ['admin']);
    policy = withAdmins(TEST_POLICY, cp.issuer);
    expect((await api(cp, root, 'PUT', '/policies', policy, { 'if-match': '"0"' })).status).toBe(200);
    const registered = await api(cp, root, 'POST', '/agents', JSON.stringify({ name: 'edge-1' }));
    agentKey = registered.body.key as string;
    process.env.TEST_EDGE1_KEY = agentKey;
  });
  afterAll(async () => {
    await agent?.stop();
    await cp.stop();
  });

  it('connects, says hello, fetches its policy and shows as connected', async () => {
    const started = Date.now();
    agent = await startAgent(agentConfig(cp, mkdtempSync(join(tmpdir(), 'tk-agent-')), ['orders-db', 'other-db']), {
      listenerFactories: stubListener,
      log: quietLog,
    });
    await waitFor(() => agent.policy.policy, 10_000, 'policy');
    expect(agent.policy.policy?.version).toBe(1);
    // The agent receives only its own targets' part of the policy.
    expect(agent.policy.policy?.document.targets.map((t) => t.name)).toEqual(['orders-db']);
    const { body } = await api(cp, root, 'GET', '/agents');
    expect(body.agents).toEqual([expect.objectContaining({ name: 'edge-1', connected: true, targets: ['orders-db'] })]);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(agent.context.decide(identity('alice', ['support']), 'orders-db', { class: 'write' }).kind).toBe('approve');
  });

  it('receives a policy change pushed by the control plane once a second admin approves it', async () => {
    const changed = policy.replace('read: allow', 'read: deny');
    const sent = Date.now();
    const { requestId } = await changePolicy(cp, root, changed, 1);
    const approved = Date.now();
    await waitFor(() => agent.policy.policy?.version === 2 || undefined, 5_000, 'pushed policy');
    const latencyMs = Date.now() - approved;
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
    // The submit and second admin's approval go through the local control plane (slow on a loaded CI machine); the push after it is the bound that matters.
    expect(approved - sent).toBeLessThan(15_000);
    expect(latencyMs).toBeLessThan(2_000);
    expect(agent.context.decide(identity('alice', ['support']), 'orders-db', { class: 'read' }).kind).toBe('deny');
  });

  it('keeps the previous policy everywhere when an invalid one is submitted', async () => {
    const result = await api(cp, root, 'PUT', '/policies', 'rules: 42\n', { 'if-match': '"2"' });
    expect(result.status).toBe(400);
    await new Promise((r) => setTimeout(r, 500));
    expect(agent.policy.policy?.version).toBe(2);
  });

  it('answers a malformed frame with an error and keeps serving the connection', async () => {
    const ws = new WebSocket(cp.wsUrl, { headers: { authorization: `Bearer ${agentKey}` } });
    const received: Record<string, unknown>[] = [];
    ws.on('message', (d) => received.push(JSON.parse(String(d)) as Record<string, unknown>));
    await new Promise((r) => ws.once('open', r));
    ws.send('{"type":"hello","v":1,"targets":"all"}');
    ws.send('not json at all');
    ws.send(JSON.stringify({ type: 'policy.get', v: 1 }));
    await waitFor(() => received.length >= 3 || undefined, 5_000, 'three replies');
    expect(received[0]).toMatchObject({ type: 'error', code: 'malformed-frame' });
    expect(received[1]).toMatchObject({ type: 'error', code: 'malformed-frame' });
    expect(received[2]).toMatchObject({ type: 'policy', version: 2 });
    ws.close();
  });

  it('refuses an approval request for a target the agent does not serve', async () => {
    const ws = new WebSocket(cp.wsUrl, { headers: { authorization: `Bearer ${agentKey}` } });
    const received: Record<string, unknown>[] = [];
    ws.on('message', (d) => received.push(JSON.parse(String(d)) as Record<string, unknown>));
    await new Promise((r) => ws.once('open', r));
    ws.send(
      JSON.stringify({
        type: 'approval.request',
        v: 1,
        requestId: '11111111-2222-3333-4444-555555555555',
        kind: 'statement',
        target: 'other-db',
        protocol: 'postgres',
        text: 'DELETE FROM t WHERE id = 1',
        sha256: 'a'.repeat(64),
        class: 'write',
        rule: 'support',
        requester: { issuer: cp.issuer, subject: 'alice', name: 'alice', groups: ['support'] },
        approval: { groups: ['dba'], min: 1, timeoutSeconds: 60 },
      }),
    );
    await waitFor(() => received.length >= 1 || undefined, 5_000, 'reply');
    expect(received[0]).toMatchObject({ type: 'error', code: 'target-not-served', inReplyTo: '11111111-2222-3333-4444-555555555555' });
    ws.close();
  });

  it('refuses a request id reused for the same action by another requester', async () => {
    const ws = new WebSocket(cp.wsUrl, { headers: { authorization: `Bearer ${agentKey}` } });
    const received: Record<string, unknown>[] = [];
    ws.on('message', (d) => received.push(JSON.parse(String(d)) as Record<string, unknown>));
    await new Promise((r) => ws.once('open', r));
    const ask = (subject: string): string =>
      JSON.stringify({
        type: 'approval.request',
        v: 1,
        requestId: '22222222-3333-4444-5555-666666666666',
        kind: 'statement',
        target: 'orders-db',
        protocol: 'postgres',
        text: 'DELETE FROM t WHERE id = 2',
        sha256: 'b'.repeat(64),
        class: 'write',
        rule: 'support',
        requester: { issuer: cp.issuer, subject, name: subject, groups: ['support'] },
        approval: { groups: ['dba'], min: 1, timeoutSeconds: 60 },
      });
    ws.send(ask('alice'));
    await waitFor(() => received.length >= 1 || undefined, 5_000, 'first reply');
    ws.send(ask('mallory'));
    await waitFor(() => received.length >= 2 || undefined, 5_000, 'second reply');
    expect(received.map((m) => m.type === 'error' ? m.code : m.type)).toEqual(['approval.pending', 'request-conflict']);
    ws.close();
  });

  it('refuses a bad agent key at the handshake', async () => {
    expect(await handshakeStatus(cp, `${agentKey}tampered`)).toBe(403);
  });

  it('reconnects after the control plane restarts and keeps its policy meanwhile', async () => {
    const { httpUrl } = cp;
    const port = Number(new URL(httpUrl).port);
    await cp.stop();
    await waitFor(() => !agent.tunnel.connected || undefined, 5_000, 'disconnect');
    // Without a control plane the cached policy still decides.
    expect(agent.policy.policy?.version).toBe(2);

    cp = await startTestControlPlane(dataDir, port);
    root = await tokenFor(cp, 'root', ['admin']);
    // Backoff is capped at 30 s with full jitter: the next attempt after the restart may be that far off.
    // The agent's own view too: the control plane may still list the connection it had before the restart.
    await waitFor(async () => {
      if (!agent.tunnel.connected) return undefined;
      const { body } = await api(cp, root, 'GET', '/agents');
      return (body.agents as { connected: boolean }[])[0]?.connected || undefined;
    }, 40_000, 'reconnect');
    await changePolicy(cp, root, policy, 2);
    await waitFor(() => agent.policy.policy?.version === 3 || undefined, 5_000, 'policy after restart');
  }, 70_000);

  it('closes every open connection of an agent whose key is rotated, and the old key no longer connects', async () => {
    await waitFor(() => agent.tunnel.connected || undefined, 40_000, 'agent connected');
    const second = await openTunnel(cp, agentKey);
    const secondClosed = new Promise<void>((resolve) => second.once('close', () => resolve()));

    const rotated = await api(cp, root, 'POST', '/agents', JSON.stringify({ name: 'edge-1', rotate: true }));

    expect(rotated.status).toBe(201);
    expect(rotated.body.connectionsClosed).toBe(2);
    await secondClosed;
    await waitFor(() => !agent.tunnel.connected || undefined, 5_000, 'agent disconnected');
    expect(await handshakeStatus(cp, agentKey)).toBe(403);
    const { body } = await api(cp, root, 'GET', '/agents');
    expect(body.agents).toEqual([expect.objectContaining({ name: 'edge-1', connected: false })]);
    agentKey = rotated.body.key as string;
    expect(await handshakeStatus(cp, agentKey)).toBe(101);
  }, 60_000);

  it('closes the connections of a deleted agent and refuses its key from then on', async () => {
    const open = await openTunnel(cp, agentKey);
    const closed = new Promise<void>((resolve) => open.once('close', () => resolve()));

    const deleted = await api(cp, root, 'DELETE', '/agents/edge-1');

    expect(deleted.status).toBe(200);
    await closed;
    expect(await handshakeStatus(cp, agentKey)).toBe(403);
    expect((await api(cp, root, 'DELETE', '/agents/edge-1')).status).toBe(404);
  });
});

/** 101 when the tunnel handshake succeeds (the socket is closed again at once), else the HTTP status. */
function handshakeStatus(cp: LocalControlPlane, key: string): Promise<number | undefined> {
  const ws = new WebSocket(cp.wsUrl, { headers: { authorization: `Bearer ${key}` } });
  return new Promise<number | undefined>((resolve) => {
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode));
    ws.on('open', () => {
      ws.close();
      resolve(101);
    });
    ws.on('error', () => resolve(undefined));
  });
}
