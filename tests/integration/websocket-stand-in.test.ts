import { ApiGatewayManagementApiClient, DeleteConnectionCommand, GoneException } from '@aws-sdk/client-apigatewaymanagementapi';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deleteAgent } from '../../lambdas/domain/agents';
import { NotFoundError } from '../../lambdas/domain/errors';
import { getRuntime } from '../../lambdas/shared/runtime';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/aws/credentials';
import type { LocalControlPlane } from '../../local/control-plane';
import { api, openTunnel, startTestControlPlane, TEST_POLICY, tokenFor, waitFor } from '../support/control-plane';
import { identity } from '../support/identities';

/** A client frame (RFC 6455 section 5.2): FIN, opcode, masked payload of under 126 bytes. */
function clientFrame(opcode: number, payload: Buffer): Buffer {
  const mask = randomBytes(4);
  const masked = Buffer.from(payload.map((b, i) => b ^ (mask[i % 4] as number)));
  return Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | payload.length]), mask, masked]);
}

/** A WebSocket client written by hand, so that it can ignore a close frame as a broken or hostile client would. */
async function rawTunnel(cp: LocalControlPlane, key: string): Promise<{ socket: Socket; received: () => Buffer; closed: Promise<void> }> {
  const url = new URL(cp.wsUrl);
  const socket = connect(Number(url.port), url.hostname);
  let data = Buffer.alloc(0);
  socket.on('data', (d) => (data = Buffer.concat([data, d])));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(
    [`GET ${url.pathname} HTTP/1.1`, `Host: ${url.host}`, 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`, 'Sec-WebSocket-Version: 13', `Authorization: Bearer ${key}`, '', ''].join('\r\n'),
  );
  await waitFor(() => (data.includes('\r\n\r\n') ? true : undefined), 5_000, 'handshake');
  expect(data.toString('latin1')).toMatch(/^HTTP\/1\.1 101 /);
  const headerEnd = data.indexOf('\r\n\r\n') + 4;
  return { socket, received: () => data.subarray(headerEnd), closed };
}

describe('the local WebSocket API stand-in and closing agent connections', () => {
  let cp: LocalControlPlane;
  let key: string;
  let management: ApiGatewayManagementApiClient;

  beforeAll(async () => {
    cp = await startTestControlPlane();
    const root = await tokenFor(cp, 'root', ['admin']);
    await api(cp, root, 'PUT', '/policies', TEST_POLICY, { 'if-match': '"0"' });
    key = (await api(cp, root, 'POST', '/agents', JSON.stringify({ name: 'edge-1' }))).body.key as string;
    management = new ApiGatewayManagementApiClient({ endpoint: cp.httpUrl, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
  });
  afterAll(async () => {
    management.destroy();
    await cp.stop();
  });

  it('ends a connection on DeleteConnection as API Gateway does: no message routed after it, the socket dropped, a second delete Gone', async () => {
    const tunnel = await rawTunnel(cp, key);
    const connectionId = await waitFor(async () => (await getRuntime('test').deps.connections.list())[0]?.connectionId, 5_000, 'connection record');

    await management.send(new DeleteConnectionCommand({ ConnectionId: connectionId }));

    await waitFor(() => (tunnel.received().includes(0x88) ? true : undefined), 5_000, 'close frame');
    const seenBefore = (await getRuntime('test').deps.agents.get('edge-1'))?.lastSeenAt;
    await new Promise((r) => setTimeout(r, 10));
    // A heartbeat would move lastSeenAt if it were routed; this client never answers the close frame.
    tunnel.socket.write(clientFrame(0x1, Buffer.from(JSON.stringify({ type: 'heartbeat', v: 1, sentAt: Date.now() }))));
    let timer: NodeJS.Timeout | undefined;
    const dropped = await Promise.race([tunnel.closed.then(() => true), new Promise<false>((r) => (timer = setTimeout(() => r(false), 5_000)))]);
    clearTimeout(timer);

    expect(dropped).toBe(true);
    expect((await getRuntime('test').deps.agents.get('edge-1'))?.lastSeenAt).toBe(seenBefore);
    await expect(management.send(new DeleteConnectionCommand({ ConnectionId: connectionId }))).rejects.toBeInstanceOf(GoneException);
    await waitFor(async () => ((await getRuntime('test').deps.connections.get(connectionId)) === undefined ? true : undefined), 5_000, '$disconnect');
  });

  it('deleting an agent again closes a connection that the first attempt could not', async () => {
    const open = [await openTunnel(cp, key), await openTunnel(cp, key)];
    const closed = open.map((ws) => new Promise<void>((resolve) => ws.once('close', () => resolve())));
    const ids = (await getRuntime('test').deps.connections.list()).map((c) => c.connectionId);
    expect(ids).toHaveLength(2);
    const real = getRuntime('test').deps;
    let failOnce = true;
    const flaky = { ...real, disconnect: async (id: string) => (id === ids[0] && failOnce ? ((failOnce = false), Promise.reject(new Error('management API unavailable'))) : real.disconnect(id)) };
    const root = identity('root', ['admin']);

    await expect(deleteAgent(flaky, 'edge-1', root)).rejects.toThrow('could not close every connection of agent edge-1');

    expect(await real.connections.get(ids[0] ?? '')).toBeDefined();
    expect(await real.connections.get(ids[1] ?? '')).toBeUndefined();
    await deleteAgent(real, 'edge-1', root);
    await Promise.all(closed);
    await expect(deleteAgent(real, 'edge-1', root)).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe('the local control plane stopping with agents connected', () => {
  it('runs each connection\'s $disconnect before its stores close, so that no agent stays recorded as connected', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tk-cp-'));
    let cp = await startTestControlPlane(dataDir);
    const root = await tokenFor(cp, 'root', ['admin']);
    await api(cp, root, 'PUT', '/policies', TEST_POLICY, { 'if-match': '"0"' });
    const key = (await api(cp, root, 'POST', '/agents', JSON.stringify({ name: 'edge-1' }))).body.key as string;
    const tunnel = await openTunnel(cp, key);
    await waitFor(async () => (await getRuntime('test').deps.connections.list())[0], 5_000, 'connection record');

    await cp.stop();
    tunnel.terminate();
    cp = await startTestControlPlane(dataDir);

    try {
      expect(await getRuntime('test').deps.connections.list()).toEqual([]);
      expect((await getRuntime('test').deps.agents.get('edge-1'))?.connectionId).toBeUndefined();
    } finally {
      await cp.stop();
    }
  });
});
