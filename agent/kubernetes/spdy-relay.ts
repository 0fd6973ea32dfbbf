import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { connect } from 'node:tls';
import { UPSTREAM_UNREACHABLE } from './forward';
import { writeRawStatus } from './raw-status';
import type { Credential, KubeUpstream } from './upstream';
import { upstreamHeaders } from './upstream-headers';
import type { Relayed } from './websocket-relay';

/** Longest answer head (status line and headers) the agent reads from the API server before relaying. */
export const MAX_UPGRADE_ANSWER_HEAD_BYTES = 16 * 1024;
const SWITCHED = /^HTTP\/1\.1 101 /;

/** Reads the bytes of a switched connection as they pass (a terminal's recording); returns why when it cannot. */
export interface SpdyObserver {
  fromCaller(chunk: Buffer): string | undefined;
  fromUpstream(chunk: Buffer): string | undefined;
}

/**
 * An upgrade relayed byte for byte: SPDY/3.1 (older kubectl's exec, attach and port-forward) and
 * port-forward's SPDY tunnelled in WebSocket. The agent sends the request upstream itself (its own
 * headers and token), then relays bytes both ways with pipe's backpressure. An exec or attach over
 * SPDY is read on the way by `observer` (its recording), each chunk before it is passed on; a
 * connection it cannot read is closed.
 */
export async function relayUpgradeBytes(upstream: KubeUpstream, req: IncomingMessage, socket: Duplex, head: Buffer, path: string, credential: Credential, observer: SpdyObserver | undefined): Promise<Relayed> {
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
    const up = connect({ host: String(options.hostname), port: Number(options.port), ca: options.ca, servername: options.servername, rejectUnauthorized: true, ALPNProtocols: ['http/1.1'] });
    up.setNoDelay(true);
    const lines = [`${options.method ?? 'POST'} ${String(options.path)} HTTP/1.1`];
    for (const [name, value] of Object.entries(options.headers ?? {})) {
      for (const v of [value].flat()) if (v !== undefined) lines.push(`${name}: ${String(v)}`);
    }
    up.once('secureConnect', () => up.write(`${lines.join('\r\n')}\r\n\r\n`));
    // The caller's bytes go upstream only once the API server switched protocols: before that they
    // would be read as further HTTP requests on the agent's connection, which the agent never judged.
    let answer = Buffer.alloc(0);
    const onAnswer = (c: Buffer): void => {
      answer = Buffer.concat([answer, c]);
      const end = answer.indexOf('\r\n\r\n');
      if (end < 0 && answer.length <= MAX_UPGRADE_ANSWER_HEAD_BYTES) return;
      up.off('data', onAnswer);
      if (end < 0) {
        up.destroy();
        writeRawStatus(socket, 'ServiceUnavailable', `twokey: the API server's answer head is over ${MAX_UPGRADE_ANSWER_HEAD_BYTES} bytes`);
        return;
      }
      const answerHead = answer.subarray(0, end).toString('latin1');
      if (SWITCHED.test(answerHead)) {
        const rest = answer.subarray(end + 4);
        if (observer && !(observe(observer.fromUpstream(rest)) && observe(observer.fromCaller(head)))) return;
        socket.write(answer);
        if (head.length) up.write(head);
        if (observer) {
          socket.on('data', (c: Buffer) => observe(observer.fromCaller(c)));
          up.on('data', (c: Buffer) => observe(observer.fromUpstream(c)));
        }
        socket.pipe(up);
      } else {
        // A refusal passes without a redirect, as plain answers do (forward.ts): clients follow one with the caller's token.
        socket.write(Buffer.concat([Buffer.from(answerHead.split('\r\n').filter((line) => !/^location:/i.test(line)).join('\r\n'), 'latin1'), answer.subarray(end)]));
        socket.resume();
      }
      up.pipe(socket);
    };
    // Registered before the pipes, an observer reads each chunk before it is passed on.
    const observe = (failure: string | undefined): boolean => {
      if (failure === undefined || settled) return !settled;
      socket.unpipe(up);
      up.unpipe(socket);
      up.destroy();
      socket.destroy();
      finish({ status: 101, error: `twokey: ${failure}; the connection was closed` });
      return false;
    };
    up.on('data', onAnswer);
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
