import { readFile } from 'node:fs/promises';
import { createServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { AgentContext, ProtocolListener } from '../agent';
import type { KubernetesTargetConfig } from '../config';
import { ApiSessions } from './api-sessions';
import { coreRules } from './core-rules';
import { PendingStreamAsks } from './pending-asks';
import { writeRawStatus } from './raw-status';
import { handleApiRequest, type KubeProxyDeps } from './request-handler';
import { listenerTls } from './tls';
import { handleUpgrade } from './upgrade';
import { KubeUpstream } from './upstream';

/** Largest request head (request line and headers) accepted: kubectl's are about 1 KiB. */
export const MAX_HEADER_BYTES = 16 * 1024;
/** Time a caller has to send its request head, and its whole request. */
export const HEADERS_TIMEOUT_MS = 30_000;
export const REQUEST_TIMEOUT_MS = 60_000;
/** Connections one target's listener holds at once. */
export const MAX_CONNECTIONS = 2_000;

/**
 * The HTTPS endpoint kubectl talks to for one Kubernetes target: the configured certificate or one
 * made for the target, each request judged and served on its own (a bad one is answered with a
 * Status and nothing else is touched), upgrades relayed.
 */
export async function startKubernetesListener(target: KubernetesTargetConfig, context: AgentContext): Promise<ProtocolListener> {
  const tls = await listenerTls(target, context.stateDir);
  const ca = target.caFile ? await readFile(target.caFile, 'utf8') : undefined;
  const upstream = new KubeUpstream(target, ca);
  const sessions = new ApiSessions(target.name, context);
  const deps: KubeProxyDeps = { target: target.name, context, upstream, sessions, rules: coreRules, pendingStreams: new PendingStreamAsks() };
  const server = createServer({ cert: tls.cert, key: tls.key, maxHeaderSize: MAX_HEADER_BYTES, headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS, noDelay: true });
  server.maxConnections = MAX_CONNECTIONS;
  const fail = (e: unknown): void => context.log.error('kubernetes.unhandled', { target: target.name, error: String(e) });
  server.on('request', (req, res) => void handleApiRequest(deps, req, res).catch(fail));
  server.on('upgrade', (req, socket: Socket, head: Buffer) => void handleUpgrade(deps, req, socket, head).catch((e: unknown) => {
    fail(e);
    writeRawStatus(socket, 'InternalError', 'twokey: the agent could not serve this request');
  }));
  server.on('clientError', (e: NodeJS.ErrnoException, socket: Socket) =>
    e.code === 'HPE_HEADER_OVERFLOW'
      ? writeRawStatus(socket, 'RequestEntityTooLarge', `twokey: the request head is over ${MAX_HEADER_BYTES} bytes`)
      : writeRawStatus(socket, 'BadRequest', 'twokey: the request could not be read as HTTP'),
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(target.listen.port, target.listen.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  return {
    target: target.name,
    endpoint: `${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`,
    async stop() {
      sessions.closeAll('the agent is stopping');
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      upstream.close();
    },
  };
}
