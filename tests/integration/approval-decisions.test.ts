import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { ApprovalClient, type DecisionMessage } from '../../agent/approvals/approval-client';
import { TunnelClient } from '../../agent/tunnel/tunnel-client';
import type { ApprovalAsk } from '../../core/approval/request';
import { principalKey } from '../../core/identity/identity';
import { decodeAgentMessage, encodeFrame, TUNNEL_PROTOCOL_VERSION, type AgentMessage, type ControlMessage } from '../../core/tunnel/messages';
import { waitFor } from '../support/control-plane';

const quietLog = { info: () => undefined, warn: () => undefined, error: () => undefined };
const ISSUER = 'https://idp.example.com';
const ALICE = principalKey({ issuer: ISSUER, subject: 'alice' });
const SHA = 'a'.repeat(64);

/**
 * The control plane's side of the tunnel, reduced to what approvals need: it answers hello and
 * accepts every request, and the test sends decisions when it likes (as often as it likes).
 */
class ControlPlanePeer {
  readonly received: AgentMessage[] = [];
  private socket: WebSocket | undefined;

  private constructor(readonly server: WebSocketServer) {
    server.on('connection', (socket) => {
      this.socket = socket;
      socket.on('message', (data) => {
        const decoded = decodeAgentMessage(data as Buffer);
        if (!decoded.ok) return;
        this.received.push(decoded.value);
        if (decoded.value.type === 'hello') this.send({ type: 'hello.ok', v: TUNNEL_PROTOCOL_VERSION, agent: 'edge', accepted: [...decoded.value.targets], rejected: [] });
        if (decoded.value.type === 'approval.request') {
          this.send({ type: 'approval.pending', v: TUNNEL_PROTOCOL_VERSION, requestId: decoded.value.requestId, reviewers: 1, groups: ['dba'], expiresAt: new Date(Date.now() + 60_000).toISOString() });
        }
      });
    });
  }

  static async start(): Promise<ControlPlanePeer> {
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise((resolve) => server.once('listening', resolve));
    return new ControlPlanePeer(server);
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  send(message: ControlMessage): void {
    const frame = encodeFrame(message);
    if (!frame.ok) throw new Error(frame.error.message);
    this.socket?.send(frame.value);
  }

  acks(requestId: string): number {
    return this.received.filter((m) => m.type === 'approval.ack' && m.requestId === requestId).length;
  }

  close(): Promise<void> {
    for (const c of this.server.clients) c.terminate();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

describe('approval decisions from the control plane, delivered more than once', () => {
  let peer: ControlPlanePeer;
  let tunnel: TunnelClient;
  let approvals: ApprovalClient;
  let n = 0;

  beforeAll(async () => {
    peer = await ControlPlanePeer.start();
    tunnel = new TunnelClient({ url: peer.url, key: 'k', agentVersion: 'test', targets: () => ['orders-db'], policyVersion: () => undefined, log: quietLog });
    approvals = new ApprovalClient(tunnel, quietLog);
    tunnel.start();
    await waitFor(() => tunnel.connected || undefined, 5_000, 'tunnel');
  });
  afterAll(async () => {
    await tunnel.stop();
    await peer.close();
  });

  const ask = (kind: ApprovalAsk['kind'] = 'statement'): ApprovalAsk => ({
    requestId: `request-${++n}-0000`,
    kind,
    target: 'orders-db',
    protocol: 'postgres',
    text: "UPDATE orders SET status = 'x' WHERE id = 1",
    sha256: SHA,
    class: 'write',
    rule: 'support',
    requester: { issuer: ISSUER, subject: 'alice', name: 'Alice', groups: ['support'] },
    approval: { groups: ['dba'], min: 1, timeoutSeconds: 60 },
    windowMinutes: kind === 'window' ? 5 : undefined,
  });

  const decision = (a: ApprovalAsk, outcome: DecisionMessage['outcome'] = 'approved'): DecisionMessage => ({
    type: 'approval.decision',
    v: TUNNEL_PROTOCOL_VERSION,
    requestId: a.requestId,
    outcome,
    decidedBy: ['bob@example.com'],
    kind: a.kind,
    target: a.target,
    issuer: ISSUER,
    subject: 'alice',
    sha256: a.sha256,
    validUntil: new Date(Date.now() + 600_000).toISOString(),
  });

  /** Delivers a decision and waits until the agent acknowledged it (it has been handled). */
  async function deliver(d: DecisionMessage): Promise<void> {
    const before = peer.acks(d.requestId);
    peer.send(d);
    await waitFor(() => peer.acks(d.requestId) > before || undefined, 5_000, 'ack');
  }

  it('runs a late approval once, though the decision arrives again after the grant was used', async () => {
    const a = ask();
    expect((await approvals.submit(a)).ok).toBe(true);
    await deliver(decision(a));
    expect(approvals.takeOneTimeGrant(ALICE, a.target, a.sha256)).toBe(true);
    await deliver(decision(a));
    expect(approvals.takeOneTimeGrant(ALICE, a.target, a.sha256)).toBe(false);
  });

  it('wakes the waiting caller once and keeps no grant, though the decision arrives twice', async () => {
    const a = ask();
    expect((await approvals.submit(a)).ok).toBe(true);
    const waited = approvals.waitForDecision(a.requestId, 5_000);
    await deliver(decision(a));
    expect((await waited)?.outcome).toBe('approved');
    await deliver(decision(a));
    expect(approvals.takeOneTimeGrant(ALICE, a.target, a.sha256)).toBe(false);
  });

  it('keeps a grant only for the principal that asked: the same subject from another issuer gets nothing', async () => {
    const a = ask();
    expect((await approvals.submit(a)).ok).toBe(true);
    await deliver(decision(a));
    expect(approvals.takeOneTimeGrant(principalKey({ issuer: 'https://other.example.com', subject: 'alice' }), a.target, a.sha256)).toBe(false);
    expect(approvals.takeOneTimeGrant(ALICE, 'other-db', a.sha256)).toBe(false);
    expect(approvals.takeOneTimeGrant(ALICE, a.target, 'b'.repeat(64))).toBe(false);
    expect(approvals.takeOneTimeGrant(ALICE, a.target, a.sha256)).toBe(true);
  });

  it('ignores a decision for a request this agent never sent', async () => {
    const a = ask();
    await deliver(decision(a));
    expect(approvals.takeOneTimeGrant(ALICE, a.target, a.sha256)).toBe(false);
  });

  it.each([
    ['another statement than the one asked', { sha256: 'c'.repeat(64) }],
    ['another target', { target: 'other-db' }],
    ['another requester', { issuer: 'https://other.example.com' }],
  ])('treats a decision about %s as failed, and grants nothing', async (_name, change) => {
    const a = ask();
    expect((await approvals.submit(a)).ok).toBe(true);
    const waited = approvals.waitForDecision(a.requestId, 5_000);
    await deliver({ ...decision(a), ...change });
    expect((await waited)?.outcome).toBe('failed');
    expect(approvals.takeOneTimeGrant(ALICE, a.target, a.sha256)).toBe(false);
  });

  it('acts on the first decision only: an approval arriving after a denial of the same request opens no window', async () => {
    const denied = ask('window');
    expect((await approvals.submit(denied)).ok).toBe(true);
    await deliver(decision(denied, 'denied'));
    await deliver(decision(denied, 'approved'));
    expect(approvals.windowOpen(ALICE, denied.target)).toBe(false);
  });

  it('opens a write window for the principal that asked only', async () => {
    const a = ask('window');
    expect((await approvals.submit(a)).ok).toBe(true);
    await deliver(decision(a));
    expect(approvals.windowOpen(ALICE, a.target)).toBe(true);
    expect(approvals.windowOpen(principalKey({ issuer: 'https://other.example.com', subject: 'alice' }), a.target)).toBe(false);
  });
});
