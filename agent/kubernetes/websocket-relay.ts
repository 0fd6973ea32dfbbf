import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { UPSTREAM_UNREACHABLE } from './forward';
import { writeRawStatus } from './raw-status';
import { kubeStatus } from './status';
import { TerminalFeed, type TerminalTap } from './terminal-feed';
import type { Credential, KubeUpstream } from './upstream';

/** Largest WebSocket message relayed (kubectl sends stdin and resize in small frames; the API server 32 KiB stdout frames). */
export const MAX_WS_MESSAGE_BYTES = 1024 * 1024;
/** Bytes queued toward one side before the other side is paused (backpressure across the relay). */
export const MAX_WS_BUFFERED_BYTES = 1024 * 1024;
/** Time the API server has to accept the upgrade. */
export const WS_HANDSHAKE_TIMEOUT_MS = 30_000;

/** The channels of the v4/v5.channel.k8s.io protocols (first byte of each binary message). */
const CHANNEL = { stdin: 0, stdout: 1, stderr: 2, error: 3, resize: 4 } as const;

export interface Relayed {
  readonly status: number;
  readonly bytes: number;
  readonly error?: string;
}

/** A subprotocol is an RFC 6455 token (RFC 7230 tchar), which the WebSocket library insists on. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Why a terminal's WebSocket cannot be relayed message by message (a subprotocol that is no token), or undefined. */
export function unrelayableSubprotocol(req: IncomingMessage): string | undefined {
  const bad = offeredSubprotocols(req).find((p) => !TOKEN.test(p));
  return bad === undefined ? undefined : `twokey: the WebSocket subprotocol ${JSON.stringify(bad.slice(0, 64))} is not a token`;
}

const offeredSubprotocols = (req: IncomingMessage): string[] =>
  (req.headers['sec-websocket-protocol'] ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);

/**
 * A WebSocket terminal (exec, attach; the channel.k8s.io family): the agent opens the
 * upstream socket first, with the subprotocols the caller offered, then accepts the caller with the
 * one the API server chose; messages pass one by one both ways, each side paused while the other's
 * queue is full. A refused upstream handshake (a Status) is passed back as it came.
 */
export function relayWebSocket(upstream: KubeUpstream, req: IncomingMessage, socket: Duplex, head: Buffer, path: string, credential: Credential, tap: TerminalTap): Promise<Relayed> {
  return upstream.upgradeOptions({ method: 'GET', path, headers: {}, credential }).then(
    (options) =>
      new Promise<Relayed>((resolve) => {
        const offered = offeredSubprotocols(req);
        const url = `wss://${String(options.hostname)}:${String(options.port)}${String(options.path)}`;
        const up = new WebSocket(url, offered, {
          headers: { authorization: String((options.headers as Record<string, string>).authorization) },
          ca: options.ca,
          rejectUnauthorized: true,
          maxPayload: MAX_WS_MESSAGE_BYTES,
          perMessageDeflate: false,
          handshakeTimeout: WS_HANDSHAKE_TIMEOUT_MS,
        });
        let bytes = 0;
        let settled = false;
        /** The caller, once its socket speaks WebSocket (an HTTP answer written on it then would read as a corrupt frame). */
        let caller: WebSocket | undefined;
        const finish = (r: Relayed): void => {
          if (settled) return;
          settled = true;
          resolve({ ...r, bytes });
        };
        socket.once('close', () => {
          up.terminate();
          finish({ status: 101, bytes });
        });
        up.once('unexpected-response', (_r, answer: IncomingMessage) => {
          const chunks: Buffer[] = [];
          answer.on('data', (c: Buffer) => chunks.length < 64 && chunks.push(c));
          answer.once('end', () => {
            const body = Buffer.concat(chunks);
            const headLines = `HTTP/1.1 ${answer.statusCode ?? 502} ${answer.statusMessage ?? ''}\r\ncontent-type: ${answer.headers['content-type'] ?? 'application/json'}\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n`;
            socket.end(Buffer.concat([Buffer.from(headLines), body]));
            finish({ status: answer.statusCode ?? 502, bytes: body.length });
          });
          up.terminate();
        });
        up.once('error', (e: Error & { code?: string }) => {
          // After the upgrade the caller learns why on the error channel; the upstream's close (1009 for an oversized message) follows.
          if (caller) sendErrorStatus(caller, up.protocol, e.code === OVERSIZED_MESSAGE ? `twokey: the API server sent a message over ${MAX_WS_MESSAGE_BYTES} bytes, which the agent does not relay` : UPSTREAM_UNREACHABLE);
          else if (up.readyState === WebSocket.CONNECTING || !settled) writeRawStatus(socket, 'ServiceUnavailable', UPSTREAM_UNREACHABLE);
          finish({ status: 503, bytes, error: e.message });
        });
        up.once('open', () => {
          const chosen = up.protocol;
          const server = new WebSocketServer({ noServer: true, maxPayload: MAX_WS_MESSAGE_BYTES, perMessageDeflate: false, clientTracking: false, handleProtocols: () => chosen || false });
          server.handleUpgrade(req, socket, head, (client) => {
            caller = client;
            // Only the channel protocols carry a terminal.
            const reader = chosen.includes('channel.k8s.io') ? new ChannelReader(new TerminalFeed(tap)) : undefined;
            pipeMessages(up, client, (data, binary) => {
              bytes += data.length;
              reader?.fromUpstream(data, binary);
            });
            pipeMessages(client, up, (data, binary) => reader?.fromCaller(data, binary));
            const closeBoth = (code: number, reason: Buffer): void => {
              const safe = code >= 1000 && code < 5000 && code !== 1005 && code !== 1006 ? code : 1000;
              if (client.readyState === WebSocket.OPEN) client.close(safe, reason);
              if (up.readyState === WebSocket.OPEN) up.close(safe, reason);
              finish({ status: 101, bytes });
            };
            up.once('close', closeBoth);
            client.once('close', closeBoth);
            client.once('error', () => up.terminate());
          });
        });
      }),
    (e: unknown) => {
      writeRawStatus(socket, 'ServiceUnavailable', UPSTREAM_UNREACHABLE);
      return { status: 503, bytes: 0, error: String(e) };
    },
  );
}

/** The `ws` error code of a message over `maxPayload`. */
const OVERSIZED_MESSAGE = 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH';

/** A Status on the error channel, as the API server reports a failed stream: kubectl prints its message and fails. */
function sendErrorStatus(client: WebSocket, protocol: string, message: string): void {
  if (!protocol.includes('channel.k8s.io') || client.readyState !== WebSocket.OPEN) return;
  const status = Buffer.from(JSON.stringify(kubeStatus('InternalError', message)));
  // The base64 protocols send text: the channel as an ASCII digit, then the payload in base64.
  if (protocol.startsWith('base64.')) client.send(`${CHANNEL.error}${status.toString('base64')}`);
  else client.send(Buffer.concat([Buffer.from([CHANNEL.error]), status]), { binary: true });
}

/** Each message from `from` is sent on to `to`; `from` pauses while `to` has MAX_WS_BUFFERED_BYTES queued. */
function pipeMessages(from: WebSocket, to: WebSocket, seen: (data: Buffer, binary: boolean) => void): void {
  from.on('message', (raw: RawData, binary: boolean) => {
    const data = Array.isArray(raw) ? Buffer.concat(raw) : Buffer.from(raw as ArrayBuffer);
    seen(data, binary);
    if (to.readyState !== WebSocket.OPEN) return;
    to.send(data, { binary }, () => {
      if (from.isPaused && to.bufferedAmount < MAX_WS_BUFFERED_BYTES / 2) from.resume();
    });
    if (to.bufferedAmount >= MAX_WS_BUFFERED_BYTES) from.pause();
  });
}

/** The channel and payload of one message: binary protocols prefix a byte, base64 ones an ASCII digit. */
function channelOf(data: Buffer, binary: boolean): { channel: number; payload: Buffer } | undefined {
  if (data.length === 0) return undefined;
  if (binary) return { channel: data[0] ?? -1, payload: data.subarray(1) };
  return { channel: (data[0] ?? 0) - 0x30, payload: Buffer.from(data.subarray(1).toString('latin1'), 'base64') };
}

/** Reads a channel.k8s.io stream for the recording: stdout and stderr as output, stdin as input, resize messages. */
class ChannelReader {
  constructor(private readonly feed: TerminalFeed) {}

  fromUpstream(data: Buffer, binary: boolean): void {
    const m = channelOf(data, binary);
    if (m?.channel === CHANNEL.stdout) this.feed.output('stdout', m.payload);
    if (m?.channel === CHANNEL.stderr) this.feed.output('stderr', m.payload);
  }

  fromCaller(data: Buffer, binary: boolean): void {
    const m = channelOf(data, binary);
    if (m?.channel === CHANNEL.stdin) this.feed.input(m.payload);
    if (m?.channel === CHANNEL.resize) this.feed.resize(m.payload);
  }
}
