import type { Server } from 'node:net';

/**
 * Ends a connection that has not sent a whole request's headers within `ms` of connecting. Node's
 * headersTimeout starts only with the first byte, and the TLS handshake timeout only with the
 * ClientHello: a socket that sends nothing would otherwise hold its place until the client leaves.
 */
export function endSilentConnections(server: Server, ms: number): void {
  /** By the remote address and port, which the raw socket and a TLS socket over it share. */
  const waiting = new Map<string, NodeJS.Timeout>();
  const key = (socket: { remoteAddress?: string; remotePort?: number }): string => `${socket.remoteAddress}:${socket.remotePort}`;
  server.on('connection', (socket) => {
    const id = key(socket);
    waiting.set(id, setTimeout(() => socket.destroy(), ms).unref());
    socket.once('close', () => {
      clearTimeout(waiting.get(id));
      waiting.delete(id);
    });
  });
  server.on('request', (req: { socket: { remoteAddress?: string; remotePort?: number } }) => {
    const id = key(req.socket);
    clearTimeout(waiting.get(id));
    waiting.delete(id);
  });
}
