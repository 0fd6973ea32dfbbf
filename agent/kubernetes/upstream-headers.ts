import type { IncomingHttpHeaders } from 'node:http';

/**
 * Request headers the agent passes upstream. Everything else is dropped: the caller's Authorization
 * (the agent sends a service-account token), Impersonate-* (refused earlier anyway), cookies, and
 * Accept-Encoding (the agent reads what it masks; a compressed body could not be masked).
 */
const PASSED = ['accept', 'content-type', 'user-agent', 'kubectl-command', 'kubectl-session', 'x-stream-protocol-version', 'content-length', 'transfer-encoding'] as const;
/** The handshake of an upgrade (WebSocket, SPDY) in addition. */
const UPGRADE = ['connection', 'upgrade', 'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-protocol', 'sec-websocket-extensions'] as const;

export function upstreamHeaders(headers: IncomingHttpHeaders, upgrade: boolean): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  for (const name of upgrade ? [...PASSED, ...UPGRADE] : PASSED) {
    const v = headers[name];
    if (v !== undefined) (out as Record<string, string | string[]>)[name] = v;
  }
  return out;
}
