import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HTTP_ROUTES, type HttpRoute } from '../../lambdas/routes';
import { resolveHandler } from './handlers';

/** API Gateway HTTP APIs accept at most 10 MB; local mode keeps requests much smaller. */
export const MAX_LOCAL_REQUEST_BYTES = 1024 * 1024;

interface Match {
  readonly route: HttpRoute;
  readonly pathParameters: Record<string, string>;
}

export function matchRoute(method: string, path: string): Match | undefined {
  const parts = path.split('/').filter(Boolean);
  for (const route of HTTP_ROUTES) {
    if (route.method !== method) continue;
    const pattern = route.path.split('/').filter(Boolean);
    if (pattern.length !== parts.length) continue;
    const params: Record<string, string> = {};
    const same = pattern.every((seg, i) => {
      const part = parts[i] ?? '';
      const param = seg.match(/^\{(\w+)\}$/)?.[1];
      if (param) {
        params[param] = decodeURIComponent(part);
        return true;
      }
      return seg === part;
    });
    if (same) return { route, pathParameters: params };
  }
  return undefined;
}

async function readBody(req: IncomingMessage): Promise<Buffer | 'too-large'> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_LOCAL_REQUEST_BYTES) return 'too-large';
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Payload format 2.0, as API Gateway HTTP APIs hand it to Lambda. */
export function toHttpApiEvent(req: IncomingMessage, url: URL, body: Buffer, match: Match): APIGatewayProxyEventV2 {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(',') : v;
  const query: Record<string, string> = {};
  for (const [k, v] of url.searchParams) query[k] = query[k] === undefined ? v : `${query[k]},${v}`;
  const contentType = headers['content-type'] ?? '';
  const isText = body.length === 0 || /^(text\/|application\/(json|yaml|x-yaml|x-www-form-urlencoded))/.test(contentType);
  const now = new Date();
  const routeKey = `${match.route.method} ${match.route.path}`;
  // Payload 2.0 hands cookies over as a list and not as a header.
  const cookies = headers.cookie?.split(/;\s*/).filter(Boolean);
  delete headers.cookie;
  return {
    version: '2.0',
    ...(cookies?.length ? { cookies } : {}),
    routeKey,
    rawPath: url.pathname,
    rawQueryString: url.search.replace(/^\?/, ''),
    headers,
    queryStringParameters: Object.keys(query).length ? query : undefined,
    pathParameters: Object.keys(match.pathParameters).length ? match.pathParameters : undefined,
    requestContext: {
      accountId: 'local',
      apiId: 'local',
      domainName: headers.host ?? 'localhost',
      domainPrefix: 'local',
      http: {
        method: req.method ?? 'GET',
        path: url.pathname,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomUUID(),
      routeKey,
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    body: body.length ? (isText ? body.toString('utf8') : body.toString('base64')) : undefined,
    isBase64Encoded: !isText,
  };
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
}

/** Serves one request the way API Gateway would: route, build the event, call the handler, map the result. */
export async function serveHttpApi(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const match = matchRoute(req.method ?? 'GET', url.pathname);
  if (!match) return sendJson(res, 404, { message: 'Not Found' });
  const body = await readBody(req);
  if (body === 'too-large') return sendJson(res, 413, { message: 'Request Entity Too Large' });
  const handler = resolveHandler<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>(match.route);
  let result: APIGatewayProxyStructuredResultV2;
  try {
    result = await handler(toHttpApiEvent(req, url, body, match));
  } catch {
    return sendJson(res, 500, { message: 'Internal Server Error' });
  }
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(result.headers ?? {})) headers[k] = String(v);
  if (result.cookies?.length) headers['set-cookie'] = result.cookies;
  const payload = result.body === undefined ? '' : result.isBase64Encoded ? Buffer.from(result.body, 'base64') : result.body;
  res.writeHead(result.statusCode ?? 200, headers).end(payload);
}
