import type {
  APIGatewayAuthorizerResult,
  APIGatewayProxyResultV2,
  APIGatewayProxyWebsocketEventV2,
  APIGatewayRequestAuthorizerEvent,
} from 'aws-lambda';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { WS_HANDLERS, WS_MESSAGE_ROUTES } from '../../lambdas/routes';
import { resolveHandler } from './handlers';
import { sendJson } from './http-api';

/** API Gateway's WebSocket message payload limit (frames are 32 KB; a message may span frames up to 128 KB). */
export const MAX_WS_MESSAGE_BYTES = 128 * 1024;
export const TUNNEL_PATH = '/tunnel';
export const MANAGEMENT_PREFIX = '/@connections/';
/** After DeleteConnection (or the stand-in stopping), how long a client may take to answer the close frame before its socket is dropped. */
export const DELETE_CLOSE_GRACE_MS = 1_000;

type StatusResult = APIGatewayProxyResultV2 & { statusCode?: number };

interface LocalConnection {
  readonly socket: WebSocket;
  readonly authorizer: Record<string, unknown>;
  readonly connectedAt: number;
  readonly sourceIp: string;
}

/**
 * The WebSocket half of API Gateway in one process: the `$connect` authorizer and routes, message
 * routing on `type`, and the Management API (`/@connections/{id}`) that handlers reach through the SDK.
 */
export class LocalWebSocketApi {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_WS_MESSAGE_BYTES });
  private readonly connections = new Map<string, LocalConnection>();
  /** Each closed connection's last routes (its messages, then `$disconnect`) while they run. */
  private readonly finishing = new Set<Promise<void>>();

  constructor(private readonly domainName: () => string) {}

  private baseContext(
    connectionId: string,
    eventType: 'CONNECT' | 'MESSAGE' | 'DISCONNECT',
    routeKey: string,
    c?: LocalConnection,
  ): APIGatewayProxyWebsocketEventV2['requestContext'] {
    const now = Date.now();
    return {
      routeKey,
      eventType,
      extendedRequestId: randomBytes(8).toString('hex'),
      requestTime: new Date(now).toUTCString(),
      messageDirection: 'IN',
      stage: 'local',
      connectedAt: c?.connectedAt ?? now,
      requestTimeEpoch: now,
      requestId: randomBytes(8).toString('hex'),
      messageId: randomBytes(8).toString('hex'),
      domainName: this.domainName(),
      connectionId,
      apiId: 'local',
      authorizer: c?.authorizer,
      identity: { sourceIp: c?.sourceIp ?? '127.0.0.1' },
    } as APIGatewayProxyWebsocketEventV2['requestContext'];
  }

  async handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const connectionId = randomBytes(12).toString('base64url');
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
    const reject = (status: number, text: string): void => {
      socket.end(`HTTP/1.1 ${status} ${text}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    };
    try {
      const authorize = resolveHandler<APIGatewayRequestAuthorizerEvent, APIGatewayAuthorizerResult>(WS_HANDLERS.authorizer);
      const auth = await authorize({
        type: 'REQUEST',
        methodArn: `arn:aws:execute-api:local:local:local/local/$connect`,
        headers,
        requestContext: this.baseContext(connectionId, 'CONNECT', '$connect'),
      } as unknown as APIGatewayRequestAuthorizerEvent);
      const allowed = auth.policyDocument.Statement.every((s) => s.Effect === 'Allow');
      if (!allowed) return reject(403, 'Forbidden');
      const connection: LocalConnection = {
        socket: undefined as unknown as WebSocket,
        authorizer: { ...(auth.context ?? {}), principalId: auth.principalId },
        connectedAt: Date.now(),
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
      };
      const connect = resolveHandler<APIGatewayProxyWebsocketEventV2, StatusResult>(WS_HANDLERS.connect);
      const result = await connect({
        requestContext: this.baseContext(connectionId, 'CONNECT', '$connect', connection),
        isBase64Encoded: false,
      } as APIGatewayProxyWebsocketEventV2);
      if ((result.statusCode ?? 200) >= 300) return reject(result.statusCode ?? 500, 'Refused');
      this.wss.handleUpgrade(req, socket, head, (ws) => this.attach(connectionId, { ...connection, socket: ws }));
    } catch {
      reject(500, 'Internal Server Error');
    }
  }

  private attach(connectionId: string, connection: LocalConnection): void {
    this.connections.set(connectionId, connection);
    const message = resolveHandler<APIGatewayProxyWebsocketEventV2, StatusResult>(WS_HANDLERS.message);
    // API Gateway invokes the route integration once per message, without waiting for the previous one;
    // a chain keeps one connection's messages in order, which the tunnel protocol expects.
    let chain = Promise.resolve();
    connection.socket.on('message', (data, isBinary) => {
      // Like API Gateway, nothing is routed once the connection is closing (DeleteConnection included).
      if (connection.socket.readyState !== WebSocket.OPEN) return;
      const body = Buffer.isBuffer(data) ? data : Buffer.concat(data as Buffer[]);
      chain = chain.then(async () => {
        const text = isBinary ? body.toString('base64') : body.toString('utf8');
        await message({
          requestContext: this.baseContext(connectionId, 'MESSAGE', routeKeyOf(text), connection),
          body: text,
          isBase64Encoded: isBinary,
        } as APIGatewayProxyWebsocketEventV2).catch(() => undefined);
      });
    });
    connection.socket.on('error', () => connection.socket.terminate());
    connection.socket.on('close', () => {
      this.connections.delete(connectionId);
      const disconnect = resolveHandler<APIGatewayProxyWebsocketEventV2, StatusResult>(WS_HANDLERS.disconnect);
      const last = chain.then(() =>
        disconnect({ requestContext: this.baseContext(connectionId, 'DISCONNECT', '$disconnect', connection), isBase64Encoded: false } as APIGatewayProxyWebsocketEventV2)
          .then(() => undefined)
          .catch(() => undefined),
      );
      chain = last;
      this.finishing.add(last);
      void last.finally(() => this.finishing.delete(last));
    });
  }

  /** `POST|GET|DELETE /@connections/{id}`: the API Gateway Management API. */
  async serveManagement(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const id = decodeURIComponent(url.pathname.slice(MANAGEMENT_PREFIX.length));
    const connection = this.connections.get(id);
    if (!connection || connection.socket.readyState !== WebSocket.OPEN) {
      res.writeHead(410, { 'content-type': 'application/json', 'x-amzn-errortype': 'GoneException' });
      res.end(JSON.stringify({ message: 'Gone' }));
      return;
    }
    if (req.method === 'DELETE') {
      // DeleteConnection ends the connection at once; a client that does not answer the close frame is cut off.
      closeWithin(connection.socket, 1000, 'closed by the control plane');
      res.writeHead(204).end();
      return;
    }
    if (req.method === 'GET') {
      return sendJson(res, 200, { connectedAt: new Date(connection.connectedAt).toISOString(), identity: { sourceIp: connection.sourceIp } });
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > MAX_WS_MESSAGE_BYTES) {
        res.writeHead(413, { 'content-type': 'application/json', 'x-amzn-errortype': 'PayloadTooLargeException' });
        res.end(JSON.stringify({ message: 'Payload too large' }));
        return;
      }
      chunks.push(chunk as Buffer);
    }
    connection.socket.send(Buffer.concat(chunks).toString('utf8'));
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  }

  /** Drops every connection without `$disconnect`, as a control-plane crash would. */
  terminateAll(): void {
    for (const c of this.connections.values()) c.socket.terminate();
    this.connections.clear();
  }

  /**
   * Closes every connection, as API Gateway going away would, and resolves once each one's `$disconnect`
   * has run: the control plane closes its stores only after it, so no connection stays recorded as open.
   */
  async closeAll(): Promise<void> {
    const closed = [...this.connections.values()].map((c) => new Promise<void>((resolve) => c.socket.once('close', () => resolve())));
    for (const c of this.connections.values()) closeWithin(c.socket, 1001, 'control plane stopping');
    this.wss.close();
    await Promise.all(closed);
    await Promise.all(this.finishing);
  }
}

/** Sends a close frame; a client that does not answer it within DELETE_CLOSE_GRACE_MS is cut off. */
function closeWithin(socket: WebSocket, code: number, reason: string): void {
  socket.close(code, reason);
  const drop = setTimeout(() => socket.terminate(), DELETE_CLOSE_GRACE_MS).unref();
  socket.once('close', () => clearTimeout(drop));
}

function routeKeyOf(body: string): string {
  try {
    const type = (JSON.parse(body) as { type?: unknown }).type;
    return typeof type === 'string' && (WS_MESSAGE_ROUTES as readonly string[]).includes(type) ? type : '$default';
  } catch {
    return '$default';
  }
}
