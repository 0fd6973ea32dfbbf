import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { aggregatedContentType, aggregatedDiscovery, apiGroup, apiGroupList, apiVersions, resourceList, VERSION_INFO } from './discovery';
import { allows, reviewAccess, type FixtureToken } from './access-review';
import { isObject, type JsonObject } from './json';
import { ACCESS_REVIEW, GROUPS, isStored, type ResourceKind } from './kinds';
import { acceptsJson, chooseRendering, SERVED_TYPES, wantsAggregatedDiscovery, wantsProtobufOpenApiV2, type Rendering } from './negotiation';
import { documentHash, openApiV2, openApiV2Protobuf, openApiV3, openApiV3Index, V3_GROUP_VERSIONS } from './openapi';
import { encode, renderValue } from './render';
import { CONNECT_SUBRESOURCES, requestInfo, type RequestInfo } from './request-info';
import * as rest from './rest';
import { scale } from './scale';
import { badRequest, entityTooLarge, forbidden, internal, KubeStatusError, requestTimeout, methodNotAllowed, notAcceptable, pathNotFound, unauthorized, type KubeStatus } from './status';
import type { FixtureState } from './state';
import type { ServingCertificate } from './tls';
import { serveWatch } from './watch';

/** How long a request may take to send its body before the server gives up on it. */
export const REQUEST_BODY_TIMEOUT_MS = 60_000;
/** How many requests the fixture keeps in `state.requests` for tests to inspect. */
export const MAX_RECORDED_REQUESTS = 10_000;

const IMPERSONATION = /^impersonate-/i;

export interface RecordedRequest {
  method: string;
  path: string;
  query: string;
  user: string | undefined;
  accept: string | undefined;
  contentType: string | undefined;
  status?: number;
}

export interface UpgradeHandler {
  (info: RequestInfo & { kind: ResourceKind }, req: IncomingMessage, socket: Socket, head: Buffer, url: URL): void;
}

export interface ServerOptions {
  tls: ServingCertificate;
  tokens: Record<string, FixtureToken>;
  state: FixtureState;
  bookmarkIntervalMs: number;
  upgrade: UpgradeHandler;
}

function writeStatus(res: ServerResponse, status: KubeStatus): void {
  if (res.headersSent) return void res.end();
  // A body refused half-read leaves bytes on the connection that are not a next request.
  if (status.code === 413 || status.code === 408) res.setHeader('Connection', 'close');
  res.writeHead(status.code, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' });
  res.end(`${JSON.stringify(status)}\n`);
}

function writeJson(res: ServerResponse, status: number, value: JsonObject, contentType = 'application/json'): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Cache-Control': 'no-cache, private' });
  res.end(`${JSON.stringify(value)}\n`);
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(() => reject(requestTimeout()), REQUEST_BODY_TIMEOUT_MS);
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > rest.MAX_BODY_BYTES) {
        clearTimeout(timer);
        req.pause();
        reject(entityTooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

const recordOf = (req: IncomingMessage, url: URL): RecordedRequest => ({ method: req.method ?? '', path: url.pathname, query: url.search, user: undefined, accept: req.headers.accept, contentType: req.headers['content-type'] });

/** The user a request's bearer token names, or a 401. */
export function authenticate(tokens: Record<string, FixtureToken>, header: string | undefined): FixtureToken {
  const match = /^Bearer\s+(\S+)$/i.exec(header ?? '');
  const token = match?.[1] ? tokens[match[1]] : undefined;
  if (!token || !Object.hasOwn(tokens, match?.[1] ?? '')) throw unauthorized();
  return token;
}

/** Refuses what the token's RBAC does not allow (a self access review is open to every user, as `system:basic-user` makes it). */
export function authorize(token: FixtureToken, info: RequestInfo): void {
  if (allows(token, info.verb) || (info.resource === ACCESS_REVIEW && info.verb === 'create')) return;
  throw forbidden({ user: token.user, verb: info.verb, resource: info.resource, ...(info.subresource ? { subresource: info.subresource } : {}), group: info.apiGroup, ...(info.namespace !== undefined ? { namespace: info.namespace } : {}), ...(info.name !== undefined ? { name: info.name } : {}) });
}

function refuseImpersonation(token: FixtureToken, req: IncomingMessage): void {
  const header = Object.keys(req.headers).find((h) => IMPERSONATION.test(h));
  if (!header) return;
  const resource = header.toLowerCase() === 'impersonate-group' ? 'groups' : 'users';
  throw forbidden({ user: token.user, verb: 'impersonate', resource, group: '', name: String(req.headers[header]) });
}

/** The discovery and OpenAPI documents, by path (undefined: not one of them). */
type Document = { value: JsonObject; contentType?: string } | { bytes: Buffer; contentType: string };

function documentFor(path: string, accept: string | undefined, host: string, v3Hashes: Record<string, string>): Document | undefined {
  if (path === '/version') return { value: VERSION_INFO };
  if (path === '/api' || path === '/apis') {
    const aggregated = wantsAggregatedDiscovery(accept);
    if (aggregated) return { value: aggregatedDiscovery(path === '/api' ? 'api' : 'apis', aggregated), contentType: aggregatedContentType(aggregated) };
    return { value: path === '/api' ? apiVersions(host) : apiGroupList() };
  }
  if (path === '/api/v1') return { value: resourceList('') };
  for (const g of GROUPS) {
    if (path === `/apis/${g}`) return { value: apiGroup(g) };
    if (path === `/apis/${g}/v1`) return { value: resourceList(g) };
  }
  if (path === '/openapi/v2') return wantsProtobufOpenApiV2(accept) ? { bytes: openApiV2Protobuf(), contentType: 'application/octet-stream' } : { value: openApiV2() };
  if (path === '/openapi/v3') return { value: openApiV3Index(v3Hashes) };
  if (path.startsWith('/openapi/v3/')) {
    const doc = openApiV3(path.slice('/openapi/v3/'.length));
    return doc ? { value: doc } : undefined;
  }
  return undefined;
}

/** A connection that ends when the client goes away or the fixture stops. */
function closedPromise(req: IncomingMessage, res: ServerResponse, stopping: Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    res.on('close', () => resolve());
    req.socket.on('close', () => resolve());
    void stopping.then(() => resolve());
  });
}

export interface RunningServer {
  server: Server;
  url: string;
  stop(): Promise<void>;
}

export async function startServer(options: ServerOptions, host: string, port: number): Promise<RunningServer> {
  const { state } = options;
  let stop!: () => void;
  const stopping = new Promise<void>((resolve) => {
    stop = resolve;
  });
  const v3Hashes = Object.fromEntries(V3_GROUP_VERSIONS.map((gv) => [gv, documentHash(JSON.stringify(openApiV3(gv)))]));
  const ctx = state.restContext;

  async function handleResource(info: RequestInfo & { kind: ResourceKind }, token: FixtureToken, req: IncomingMessage, res: ServerResponse, url: URL): Promise<number> {
    const method = req.method ?? 'GET';
    const body = method === 'GET' || method === 'HEAD' ? Buffer.alloc(0) : await readBody(req);
    const request: rest.ResourceRequest = { info, query: url.searchParams, contentType: String(req.headers['content-type'] ?? ''), body, userAgent: String(req.headers['user-agent'] ?? '') };
    const rendering = chooseRendering(req.headers.accept, url.searchParams.get('includeObject'));
    if (!rendering) throw notAcceptable(SERVED_TYPES);
    if (info.subresource === 'log' && info.kind.resource === 'pods') {
      const pod = rest.get(ctx, request).value;
      await state.logs.serve(pod, url.searchParams, res, closedPromise(req, res, stopping));
      return 200;
    }
    if (info.verb === 'watch') {
      if (rendering.form === 'metadata') throw notAcceptable(SERVED_TYPES);
      serveWatch(ctx, request, rendering, res, closedPromise(req, res, stopping), { bookmarkIntervalMs: options.bookmarkIntervalMs });
      return 200;
    }
    let result: rest.ResourceResult;
    if (!isStored(info.kind) && info.verb !== 'create') throw methodNotAllowed();
    if (info.kind.resource === ACCESS_REVIEW) {
      const review = rest.decodeBody(body, request.contentType);
      if (!isObject(review)) throw badRequest('the body of the request must be a JSON object');
      result = { status: 201, value: reviewAccess(token, review) };
    } else if (info.subresource === 'scale') result = scale(ctx, request, method);
    else if (info.subresource && info.subresource !== 'status') throw methodNotAllowed();
    else {
      switch (info.verb) {
        case 'get':
          result = rest.get(ctx, request);
          break;
        case 'list':
          result = rest.list(ctx, request);
          break;
        case 'create':
          if (info.name !== undefined) throw methodNotAllowed();
          result = rest.create(ctx, request);
          break;
        case 'update':
          result = rest.update(ctx, request);
          break;
        case 'patch':
          result = rest.patch(ctx, request);
          break;
        case 'delete':
          result = rest.remove(ctx, request);
          break;
        case 'deletecollection':
          result = rest.removeCollection(ctx, request);
          break;
        default:
          throw methodNotAllowed();
      }
    }
    // The scale subresource answers its autoscaling/v1 Scale as an object, whatever form was asked.
    const effective: Rendering = info.subresource === 'scale' ? { form: 'object', encoding: rendering.form === 'object' ? rendering.encoding : 'json' } : rendering;
    const rendered = renderValue(info.kind, result.value, result.list === true, effective, ctx.now);
    const contentType = effective.form === 'object' ? undefined : `application/json;as=${String(rendered.kind)};g=meta.k8s.io;v=${effective.version}`;
    const { body: text, contentType: encoded } = encode(rendered, effective.form === 'object' ? effective.encoding : 'json');
    res.writeHead(result.status, { 'Content-Type': contentType ?? encoded, 'Cache-Control': 'no-cache, private' });
    res.end(text);
    return result.status;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://fixture');
    const record = recordOf(req, url);
    state.record(record);
    res.setHeader('Audit-Id', randomUUID());
    try {
      if (['/healthz', '/livez', '/readyz'].includes(url.pathname)) {
        res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end('ok');
        record.status = 200;
        return;
      }
      const token = authenticate(options.tokens, req.headers.authorization);
      record.user = token.user;
      refuseImpersonation(token, req);
      const info = requestInfo(req.method ?? 'GET', url.pathname, url.searchParams);
      if (!info) {
        if (req.method !== 'GET' && req.method !== 'HEAD') throw methodNotAllowed();
        const doc = documentFor(url.pathname, req.headers.accept, req.headers.host ?? '', v3Hashes);
        if (!doc && !/^\/(api|apis|openapi)(\/|$)/.test(url.pathname)) {
          // Outside the API the server's mux answers Go's plain-text 404.
          res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
          res.end('404 page not found\n');
          record.status = 404;
          return;
        }
        if (!doc) throw pathNotFound();
        if ('bytes' in doc) {
          res.writeHead(200, { 'Content-Type': doc.contentType, 'Cache-Control': 'no-cache, private' });
          res.end(doc.bytes);
        } else {
          if (!doc.contentType && !acceptsJson(req.headers.accept)) throw notAcceptable(SERVED_TYPES);
          writeJson(res, 200, doc.value, doc.contentType);
        }
        record.status = 200;
        return;
      }
      if (!info.kind || (info.subresource && !info.kind.subresources.some((s) => s.name === info.subresource))) throw pathNotFound();
      authorize(token, info);
      if (info.name === undefined && info.namespace !== undefined && !info.kind.namespaced) throw pathNotFound();
      const kinded = { ...info, kind: info.kind };
      if (!kinded.kind.namespaced && info.namespace !== undefined) throw pathNotFound();
      if (info.subresource && CONNECT_SUBRESOURCES.has(info.subresource)) throw badRequest('Upgrade request required');
      record.status = await handleResource(kinded, token, req, res, url);
    } catch (e) {
      const status = e instanceof KubeStatusError ? e.status : internal('the fixture failed to serve the request').status;
      record.status = status.code;
      writeStatus(res, status);
    }
  }

  const server = createServer({ key: options.tls.keyPem, cert: options.tls.certPem }, (req, res) => void handle(req, res));
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'https://fixture');
    const record = recordOf(req, url);
    state.record(record);
    const refuse = (status: KubeStatus): void => {
      record.status = status.code;
      const body = `${JSON.stringify(status)}\n`;
      socket.end(`HTTP/1.1 ${status.code} ${status.reason ?? ''}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    };
    try {
      const token = authenticate(options.tokens, req.headers.authorization);
      record.user = token.user;
      refuseImpersonation(token, req);
      const info = requestInfo(req.method ?? 'GET', url.pathname, url.searchParams);
      if (!info?.kind || !info.subresource || !CONNECT_SUBRESOURCES.has(info.subresource) || info.name === undefined) throw pathNotFound();
      authorize(token, info);
      record.status = 101;
      options.upgrade({ ...info, kind: info.kind }, req, socket, head, url);
    } catch (e) {
      refuse(e instanceof KubeStatusError ? e.status : internal('the fixture failed to serve the request').status);
    }
  });
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  const address = server.address() as AddressInfo;
  const hostPart = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    server,
    url: `https://${hostPart}:${address.port}`,
    stop: async () => {
      stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
    },
  };
}
