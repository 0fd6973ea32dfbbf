import { randomUUID } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { join } from 'node:path';
import { Server as McpServer } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { CallToolRequestSchema, ListToolsRequestSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { principalKey, type Identity } from '../../core/identity/identity';
import { AGENT_VERSION, type AgentContext } from '../agent';
import { MCP_GENERATED_TLS_DIR, type McpEndpointConfig } from '../config';
import { McpSession } from './mcp-session';
import { admitSession, type HeldSession } from './session-admission';
import { PROTECTED_RESOURCE_PATH, protectedResourceMetadata, unauthorized } from './protected-resource';
import type { ToolOutcome, ToolRegistry } from './tool-registry';
import { readBounded } from '../net/bounded-body';
import { listenOn } from '../net/listen';
import { endSilentConnections } from '../net/silent-connections';

/** Largest JSON-RPC request body (a tool's SQL is capped lower still: MAX_TOOL_SQL_BYTES). */
export const MAX_MCP_REQUEST_BYTES = 256 * 1024;
/** An MCP session unused this long is closed (clients reconnect with a new session). */
export const MCP_SESSION_IDLE_MS = 30 * 60_000;
const IDLE_SWEEP_MS = 60_000;
/** Of the client's self-given name and version (the handshake's), this much each reaches reviewers and recordings. */
export const MAX_CLIENT_NAME_CHARS = 64;
/** Open HTTP connections at once (each MCP session needs one or two). */
export const MAX_MCP_CONNECTIONS = 1_000;
/** POSTs one caller may have under way at once (a slow query each): one caller cannot hold every connection. */
export const MAX_MCP_REQUESTS_IN_FLIGHT_PER_CALLER = 32;
/** Time a client has to send its request headers and body. */
const REQUEST_TIMEOUT_MS = 30_000;
/** Time a client has for the TLS handshake, and from connecting to its request's headers: idle sockets do not hold a place long. */
const HANDSHAKE_TIMEOUT_MS = 10_000;
const HEADERS_TIMEOUT_MS = 10_000;
const TIMEOUT_CHECK_MS = 1_000;
const MCP_PATH = '/mcp';
/** What the model is told of the server at the handshake (it decides nothing: the policy does). */
const INSTRUCTIONS =
  'twokey stands between you and these systems under a policy. Reads (query, describe_schema) run at once on a read-only account, with sensitive columns masked. ' +
  'A write (execute) is held until a different person approves it: execute returns pending_approval with a request_id; poll request_status, or pass wait_seconds. ' +
  'Refusals are tool errors whose text starts with "twokey:"; explaining or rewording a request does not change what the policy allows.';
const LIST_TARGETS = 'list_targets';
const LIST_TARGETS_TOOL = {
  name: LIST_TARGETS,
  description: 'The targets you may reach through this agent, with the tools you may use on each.',
  inputSchema: { type: 'object' as const, properties: {} },
};

export interface McpEndpoint {
  /** host:port the endpoint bound. */
  readonly endpoint: string;
  /** The MCP URL callers use. */
  readonly url: string;
  sessions(): number;
  stop(): Promise<void>;
}

interface Open extends HeldSession {
  readonly session: McpSession;
  readonly transport: StreamableHTTPServerTransport;
  readonly server: McpServer;
  lastUsed: number;
  busy: number;
}

/** JSON-RPC's code for a server error (-32000 to -32099 are the implementation's), and for a body that is not JSON. */
const SERVER_ERROR = -32000;
const PARSE_ERROR = -32700;

/** A request refused before the MCP transport saw it: an HTTP status with a JSON-RPC error (MCP clients show its message). */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code = SERVER_ERROR,
  ) {
    super(message);
  }
}

/** The verified caller of a request, as the SDK hands it to the request handlers (`extra.authInfo`). */
interface CallerAuth {
  token: string;
  clientId: string;
  scopes: string[];
  extra: { identity: Identity };
}

/**
 * The agent's MCP endpoint (Streamable HTTP): every request carries the caller's OIDC bearer token,
 * verified like every endpoint's; a session belongs to the principal that opened it; tools are those
 * the registry lists for the caller. Denials are tool errors (`isError`) with twokey's messages.
 */
export async function startMcpEndpoint(config: McpEndpointConfig, context: AgentContext, registry: ToolRegistry, issuers: readonly string[]): Promise<McpEndpoint> {
  const open = new Map<string, Open>();
  /** POSTs under way per principal. */
  const inFlight = new Map<string, number>();
  // A generated certificate names the host of the public URL too: the name remote clients connect to.
  const publicHost = config.publicUrl === undefined ? [] : [new URL(config.publicUrl).hostname.replace(/^\[(.*)\]$/, '$1')];
  // Loaded only for TLS: the certificate maker brings node-forge, which a plain loopback endpoint does not need.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const certificates = (): typeof import('../kubernetes/tls') => require('../kubernetes/tls') as typeof import('../kubernetes/tls');
  const tls = config.tls && (await certificates().configuredOrGeneratedTls(config.tls === 'generated' ? undefined : config.tls, join(context.stateDir, MCP_GENERATED_TLS_DIR), 'mcp', config.listen.host, publicHost));
  let base = '';
  const metadataUrl = (): string => `${base}${PROTECTED_RESOURCE_PATH}${MCP_PATH}`;

  function newSession(identity: Identity, only: ReadonlySet<string> | undefined, clientAddress: string): Open {
    const principal = principalKey(identity);
    const admitted = admitSession(open.values(), principal);
    if (!admitted.ok) throw new HttpError(admitted.status, admitted.message);
    // Another caller's session is closed only once this one is initialized: a request that opens none
    // (a GET, a POST other than initialize) would otherwise end a session each time the agent is full.
    const reclaim = (): void => {
      const other = admitted.reclaim;
      const id = other?.transport.sessionId;
      if (!other || id === undefined || open.get(id) !== other) return;
      open.delete(id);
      context.log.info('mcp.session.reclaimed', { for: identity.subject });
      void other.transport.close();
    };
    const server = new McpServer({ name: 'twokey', version: AGENT_VERSION }, { capabilities: { tools: {} }, instructions: INSTRUCTIONS });
    const clientName = (): string => {
      const v = server.getClientVersion();
      return v ? `${v.name.slice(0, MAX_CLIENT_NAME_CHARS)} ${v.version.slice(0, MAX_CLIENT_NAME_CHARS)}` : 'unknown MCP client';
    };
    const session = new McpSession(context, registry, identity, only, clientAddress, clientName);
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      enableJsonResponse: true,
      onsessioninitialized: (id) => {
        reclaim();
        open.set(id, entry);
      },
    });
    const entry: Open = { principal, session, transport, server, lastUsed: Date.now(), busy: 0 };
    transport.onclose = () => {
      if (transport.sessionId) open.delete(transport.sessionId);
      session.end('the MCP session ended');
    };
    // Each request's own verified caller decides (same principal as the session's; groups may have changed since).
    const callerOf = (extra: { authInfo?: unknown }): CallerAuth | undefined => extra.authInfo as CallerAuth | undefined;
    server.setRequestHandler(ListToolsRequestSchema, (_request, extra) => {
      const caller = callerOf(extra);
      return { tools: caller ? [LIST_TARGETS_TOOL, ...registry.list(caller.extra.identity, only)] : [] };
    });
    server.setRequestHandler(CallToolRequestSchema, async (request, extra): Promise<CallToolResult> => {
      const caller = callerOf(extra);
      if (!caller) return toolResult({ ok: false, decision: 'deny', message: 'twokey: not authenticated' });
      if (request.params.name === LIST_TARGETS) return toolResult({ ok: true, decision: 'allow', result: { targets: session.listTargets(caller.extra.identity) }, summary: '' });
      return toolResult(await session.call(request.params.name, request.params.arguments, caller.extra.identity, caller.token));
    });
    void server.connect(transport);
    return entry;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://agent');
    if (req.method === 'GET' && (url.pathname === PROTECTED_RESOURCE_PATH || url.pathname === `${PROTECTED_RESOURCE_PATH}${MCP_PATH}`)) {
      return json(res, 200, protectedResourceMetadata(`${base}${MCP_PATH}`, issuers));
    }
    if (url.pathname !== MCP_PATH) return json(res, 404, { error: 'twokey: not found' });
    // A web page's request (another site's, or one reaching a loopback endpoint by DNS rebinding) carries
    // its Origin; MCP clients send none. Only the endpoint's own origin is taken (the MCP transport spec's check).
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== new URL(base).origin) return json(res, 403, { error: 'twokey: requests from a web page of another origin are refused' });
    // Node keeps the first of repeated Authorization headers: two callers' tokens in one request are refused, not picked from.
    if (req.rawHeaders.filter((h, i) => i % 2 === 0 && h.toLowerCase() === 'authorization').length > 1) return json(res, 400, { error: 'twokey: send one Authorization header' });
    // RFC 6750 §2.1 (the scheme is case-insensitive, RFC 9110 §11.1).
    const token = /^Bearer +(\S+) *$/i.exec(req.headers.authorization ?? '')?.[1];
    if (!token) return unauthorized(res, metadataUrl(), undefined);
    const verified = await context.verifyToken(token);
    if (!verified.ok) {
      context.log.warn('mcp.auth.rejected', { reason: verified.error.reason });
      return unauthorized(res, metadataUrl(), `token rejected (${verified.error.reason})`);
    }
    const identity = verified.value;
    if (req.method !== 'POST') return serve(req, res, url, token, identity, undefined);
    const principal = principalKey(identity);
    const under = inFlight.get(principal) ?? 0;
    if (under >= MAX_MCP_REQUESTS_IN_FLIGHT_PER_CALLER) {
      return json(res, 429, { jsonrpc: '2.0', error: { code: -32000, message: `twokey: ${MAX_MCP_REQUESTS_IN_FLIGHT_PER_CALLER} of your requests are under way; send more once one has finished` }, id: null });
    }
    inFlight.set(principal, under + 1);
    try {
      return await serve(req, res, url, token, identity, await readJson(req));
    } finally {
      const left = (inFlight.get(principal) ?? 1) - 1;
      if (left > 0) inFlight.set(principal, left);
      else inFlight.delete(principal);
    }
  }

  /** A verified caller's request (a POST's body read): to its session, or opening one. */
  async function serve(req: IncomingMessage, res: ServerResponse, url: URL, token: string, identity: Identity, body: unknown): Promise<void> {
    const sessionId = req.headers['mcp-session-id'];
    let entry: Open | undefined;
    if (typeof sessionId === 'string') {
      entry = open.get(sessionId);
      if (!entry) return json(res, 404, { jsonrpc: '2.0', error: { code: -32001, message: 'twokey: no such MCP session (it ended): start a new one' }, id: null });
      if (entry.principal !== principalKey(identity)) return json(res, 403, { error: 'twokey: this MCP session belongs to someone else' });
    } else {
      const target = url.searchParams.get('target');
      entry = newSession(identity, target === null ? undefined : new Set([target]), `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`);
    }
    entry.lastUsed = Date.now();
    const auth: CallerAuth = { token, clientId: identity.subject, scopes: [], extra: { identity } };
    // A POST is work under way; a GET is the stream the client listens on for as long as it likes.
    const work = req.method === 'POST' ? 1 : 0;
    entry.busy += work;
    try {
      await entry.transport.handleRequest(Object.assign(req, { auth }), res, body);
    } finally {
      entry.busy -= work;
    }
    // An initialize the transport refused leaves a session that never got an id.
    if (!entry.transport.sessionId) void entry.transport.close();
  }

  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res).catch((e: unknown) => {
      if (e instanceof HttpError) return json(res, e.status, { jsonrpc: '2.0', error: { code: e.code, message: e.message }, id: null });
      context.log.error('mcp.request.failed', { error: e instanceof Error ? e.message : String(e) });
      if (!res.headersSent) json(res, 500, { error: 'twokey: internal error' });
      else res.destroy();
    });
  };
  // Node checks the header and request timeouts every connectionsCheckingInterval (30 s by default).
  const timeouts = { requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: HEADERS_TIMEOUT_MS, connectionsCheckingInterval: TIMEOUT_CHECK_MS };
  const server: Server = tls ? createHttpsServer({ ...tls, ...timeouts, handshakeTimeout: HANDSHAKE_TIMEOUT_MS }, listener) : createHttpServer(timeouts, listener);
  server.maxConnections = MAX_MCP_CONNECTIONS;
  endSilentConnections(server, HEADERS_TIMEOUT_MS);
  const address = await listenOn(server, config.listen);
  const { port } = address;
  const host = config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host;
  base = config.publicUrl?.replace(/\/+$/, '') ?? `${tls ? 'https' : 'http'}://${host}:${port}`;
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const entry of open.values()) if (now - entry.lastUsed > MCP_SESSION_IDLE_MS) void entry.transport.close();
  }, IDLE_SWEEP_MS).unref();

  return {
    endpoint: `${config.listen.host}:${port}`,
    url: `${base}${MCP_PATH}`,
    sessions: () => open.size,
    async stop() {
      clearInterval(sweep);
      await Promise.all([...open.values()].map((e) => e.transport.close()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function toolResult(outcome: ToolOutcome): CallToolResult {
  if (!outcome.ok) return { isError: true, content: [{ type: 'text', text: outcome.message }] };
  return { content: [{ type: 'text', text: JSON.stringify(outcome.result) }] };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** The request's JSON body, refused past MAX_MCP_REQUEST_BYTES (413), when it does not arrive whole (400) or is not JSON (400). */
async function readJson(req: IncomingMessage): Promise<unknown> {
  const body = await readBounded(req, MAX_MCP_REQUEST_BYTES);
  if (!body.ok) throw body.tooLarge ? new HttpError(413, `twokey: MCP requests are limited to ${MAX_MCP_REQUEST_BYTES} bytes`) : new HttpError(400, `twokey: ${body.reason}`);
  try {
    return JSON.parse(body.value.toString('utf8')) as unknown;
  } catch {
    throw new HttpError(400, 'twokey: the request body is not JSON', PARSE_ERROR);
  }
}
