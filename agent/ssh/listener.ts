import { createServer, type Socket } from 'node:net';
import { Server } from 'ssh2';
import type { AgentContext, ProtocolListener } from '../agent';
import type { SshTargetConfig } from '../config';
import { CallerConnection } from './connection';
import { loadOrCreateHostKey } from './host-key';
import { listenOn } from '../net/listen';
import { relayScavenger } from '../net/scavenger';

/** Connections that have not authenticated yet, per listener (beyond it new ones are dropped at once). */
export const MAX_PENDING_HANDSHAKES = 64;
/** Time a connection has to authenticate (OpenSSH's LoginGraceTime, shorter). */
export const LOGIN_GRACE_MS = 30_000;
/**
 * Ciphers offered to callers: AES-GCM only. A client takes the first cipher of its own list that the
 * server offers, and OpenSSH lists chacha20-poly1305 and AES-CTR first: offered, they would be chosen,
 * and they cost the agent more per byte than AES-GCM on the CPU's AES instructions (ssh2's
 * chacha20-poly1305 without its native addon, as in the agent package, is JavaScript).
 */
export const CALLER_CIPHERS = ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com'] as const;

/**
 * The agent's SSH endpoint for one target: callers connect with plain `ssh`, `scp`, `sftp`; the
 * agent's host key (made once, kept in stateDir/ssh) identifies it. Sockets are accepted here so that
 * unauthenticated ones are capped and timed out before ssh2 sees them.
 */
export async function startSshListener(target: SshTargetConfig, context: AgentContext): Promise<ProtocolListener> {
  const hostKey = await loadOrCreateHostKey(context.stateDir, target.name);
  const ssh = new Server({ hostKeys: [hostKey.privateKey], ident: 'twokey', algorithms: { cipher: [...CALLER_CIPHERS] } });
  /** Sockets not authenticated yet, by their remote address and port (ssh2 names a connection by these). */
  const pending = new Map<string, { readonly socket: Socket; readonly timer: NodeJS.Timeout }>();
  const sockets = new Set<Socket>();
  const server = createServer({ noDelay: true }, (socket) => {
    if (pending.size >= MAX_PENDING_HANDSHAKES) return socket.destroy();
    const key = `${socket.remoteAddress}:${socket.remotePort}`;
    const timer = setTimeout(() => socket.destroy(), LOGIN_GRACE_MS);
    pending.set(key, { socket, timer });
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('close', () => {
      clearTimeout(timer);
      if (pending.get(key)?.socket === socket) pending.delete(key);
      sockets.delete(socket);
    });
    ssh.injectSocket(socket);
    relayScavenger().watch(socket);
  });
  ssh.on('connection', (client, info) => {
    const key = `${info.ip}:${info.port}`;
    new CallerConnection(client, info, {
      target,
      agent: context,
      keys: context.registeredKeys,
      onAuthenticated() {
        const entry = pending.get(key);
        if (entry) clearTimeout(entry.timer);
        pending.delete(key);
      },
    });
  });
  ssh.on('error', (e: Error) => context.log.warn('ssh.listener.error', { target: target.name, error: e.message }));
  const address = await listenOn(server, target.listen);
  const { port } = address;
  return {
    target: target.name,
    endpoint: `${target.listen.host}:${port}`,
    async stop() {
      context.sessions.closeWhere((s) => s.target === target.name, 'the agent is stopping');
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}
