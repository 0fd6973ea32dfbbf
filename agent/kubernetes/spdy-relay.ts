import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { connect } from 'node:tls';
import { UPSTREAM_UNREACHABLE } from './forward';
import { writeRawStatus } from './raw-status';
import type { Credential, KubeUpstream } from './upstream';
import { upstreamHeaders } from './upstream-headers';
import type { Relayed } from './websocket-relay';

/**
 * An SPDY/3.1 upgrade (older kubectl's exec, attach and port-forward): the agent sends the request
 * upstream itself (its own headers and token), then relays bytes both ways with pipe's backpressure.
 * SPDY compresses its stream headers with a shared dictionary, so the agent does not read the streams:
 * the session records the request, not the terminal.
 */
export async function relaySpdy(upstream: KubeUpstream, req: IncomingMessage, socket: Duplex, head: Buffer, path: string, credential: Credential): Promise<Relayed> {
  let options;
  try {
    options = await upstream.upgradeOptions({ method: req.method ?? 'POST', path, headers: upstreamHeaders(req.headers, true), credential });
  } catch (e) {
    writeRawStatus(socket, 'ServiceUnavailable', UPSTREAM_UNREACHABLE);
    return { status: 503, bytes: 0, error: String(e) };
  }
  return new Promise<Relayed>((resolve) => {
    let bytes = 0;
    let settled = false;
    const finish = (r: Omit<Relayed, 'bytes'>): void => {
      if (settled) return;
      settled = true;
      resolve({ ...r, bytes });
    };
    const up = connect({ host: String(options.hostname), port: Number(options.port), ca: options.ca, servername: options.servername, ALPNProtocols: ['http/1.1'] });
    up.setNoDelay(true);
    const lines = [`${options.method ?? 'POST'} ${String(options.path)} HTTP/1.1`];
    for (const [name, value] of Object.entries(options.headers ?? {})) {
      for (const v of [value].flat()) if (v !== undefined) lines.push(`${name}: ${String(v)}`);
    }
    up.once('secureConnect', () => {
      up.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length) up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    up.on('data', (c: Buffer) => {
      bytes += c.length;
    });
    up.once('error', (e) => {
      if (bytes === 0) writeRawStatus(socket, 'ServiceUnavailable', UPSTREAM_UNREACHABLE);
      else socket.destroy();
      finish({ status: 503, error: e.message });
    });
    up.once('close', () => {
      socket.destroy();
      finish({ status: 101 });
    });
    socket.once('close', () => {
      up.destroy();
      finish({ status: 101 });
    });
  });
}
