import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createWebSocketStream, WebSocketServer } from 'ws';
import { nameOf, namespaceOf, type JsonObject } from '../json';
import type { UpgradeHandler } from '../server';
import type { FixtureState } from '../state';
import { badRequest, notFound } from '../status';
import { commandOptions, runSession, type CommandOptions, type SessionStreams } from './exec-session';
import { SpdyConnection } from './spdy-connection';
import { commandOverSpdy, portForwardOverSpdy } from './spdy-sessions';
import { CHANNEL_PROTOCOLS, serveChannels } from './websocket-channels';

/** SPDY stream protocols the kubelet speaks for exec/attach, best first. */
const SPDY_COMMAND_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'];
const SPDY_PORT_FORWARD = 'portforward.k8s.io';
/** port-forward over WebSocket tunnels SPDY frames in binary messages (KEP-4006). */
const TUNNELED_PORT_FORWARD = 'SPDY/3.1+portforward.k8s.io';
/**
 * That name is no RFC 6455 token ('/'), which the ws library refuses in a handshake while Go's
 * servers accept it: the handshake is read under this alias and answered with the real name.
 */
const TUNNELED_ALIAS = 'SPDY-3.1-portforward.k8s.io';
/** The largest WebSocket message accepted: one tunnelled SPDY frame (24-bit length) and its header. */
export const MAX_WEBSOCKET_MESSAGE_BYTES = 0xffffff + 8;

const offered = (header: string | string[] | undefined): string[] => (Array.isArray(header) ? header : [header ?? '']).flatMap((h) => h.split(',')).map((p) => p.trim()).filter(Boolean);

/**
 * The kubelet end of `exec`, `attach` and `port-forward`, behind the API server's upgrade: WebSocket
 * (v5/v4 channel protocols, SPDY-tunnelled port-forward) and SPDY/3.1 upgrades. Sessions end when
 * the pod is deleted.
 */
export function streamUpgrades(state: FixtureState): UpgradeHandler {
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_WEBSOCKET_MESSAGE_BYTES, handleProtocols: (protocols: Set<string>, req: IncomingMessage) => chooseWebSocketProtocol(protocols, req) });
  wss.on('headers', (headers: string[], req: IncomingMessage) => {
    if (!req.url?.includes('/portforward')) return;
    const at = headers.findIndex((h) => h.toLowerCase() === `sec-websocket-protocol: ${TUNNELED_ALIAS.toLowerCase()}`);
    if (at >= 0) headers[at] = `Sec-WebSocket-Protocol: ${TUNNELED_PORT_FORWARD}`;
  });
  const open = new Map<string, Set<() => void>>();
  state.onRemoved((k, object) => {
    if (k.resource !== 'pods') return;
    for (const close of open.get(`${namespaceOf(object)}/${nameOf(object)}`) ?? []) close();
  });
  const track = (pod: JsonObject, close: () => void, transport: Duplex): void => {
    const key = `${namespaceOf(pod)}/${nameOf(pod)}`;
    const set = open.get(key) ?? new Set();
    open.set(key, set);
    set.add(close);
    transport.on('close', () => set.delete(close));
  };

  return (info, req, socket: Socket, head, url) => {
    const pod = state.restContext.store.get(info.kind, info.namespace ?? '', info.name ?? '');
    if (!pod) throw notFound('pods', '', info.name ?? '');
    const subresource = info.subresource ?? '';
    let options: CommandOptions | undefined;
    if (subresource !== 'portforward') {
      const parsed = commandOptions(pod, url.searchParams, subresource === 'attach');
      if (typeof parsed === 'string') throw badRequest(parsed);
      options = parsed;
    }
    const session = (streams: SessionStreams) => runSession(pod, state.files, options as CommandOptions, streams);
    const upgrade = String(req.headers.upgrade ?? '').toLowerCase();
    if (upgrade === 'websocket') {
      const protocols = offered(req.headers['sec-websocket-protocol']);
      const wanted = subresource === 'portforward' ? [TUNNELED_PORT_FORWARD] : CHANNEL_PROTOCOLS;
      if (!protocols.some((p) => wanted.includes(p))) throw badRequest(`unable to upgrade: no supported subprotocol among ${JSON.stringify(protocols)}`);
      if (subresource === 'portforward') req.headers['sec-websocket-protocol'] = TUNNELED_ALIAS;
      wss.handleUpgrade(req, socket, head, (ws) => {
        track(pod, () => ws.terminate(), socket);
        if (subresource === 'portforward') {
          const tunnel = createWebSocketStream(ws);
          tunnel.on('error', () => tunnel.destroy());
          new SpdyConnection(tunnel, portForwardOverSpdy(pod), () => ws.close());
        } else serveChannels(ws, ws.protocol, session);
      });
      return;
    }
    if (upgrade !== 'spdy/3.1') throw badRequest('unable to upgrade: missing upgrade headers in request');
    const versions = offered(req.headers['x-stream-protocol-version']);
    const chosen = subresource === 'portforward' ? (versions.includes(SPDY_PORT_FORWARD) ? SPDY_PORT_FORWARD : undefined) : SPDY_COMMAND_PROTOCOLS.find((p) => versions.includes(p));
    if (!chosen) throw badRequest(`unable to upgrade: unable to negotiate protocol: client supports ${JSON.stringify(versions)}, server supports ${JSON.stringify(subresource === 'portforward' ? [SPDY_PORT_FORWARD] : SPDY_COMMAND_PROTOCOLS)}`);
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: ${chosen}\r\n\r\n`);
    socket.setNoDelay(true);
    let connection: SpdyConnection;
    if (subresource === 'portforward') connection = new SpdyConnection(socket, portForwardOverSpdy(pod), () => socket.destroy());
    else {
      const command = commandOverSpdy(options as CommandOptions, session);
      connection = new SpdyConnection(socket, command.onStream, () => {
        command.closed();
        socket.destroy();
      });
      command.attach(connection);
    }
    track(pod, () => connection.close(), socket);
    if (head.length) socket.unshift(head);
  };
}

function chooseWebSocketProtocol(protocols: Set<string>, req: IncomingMessage): string | false {
  const wanted = req.url?.includes('/portforward') ? [TUNNELED_ALIAS] : CHANNEL_PROTOCOLS;
  return wanted.find((p) => protocols.has(p)) ?? false;
}
