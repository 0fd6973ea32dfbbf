import { readFile } from 'node:fs/promises';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { isJSONRPCRequest, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { isLoopback } from '../../agent/net/loopback';
import { DEFAULT_DATA_DIR, readDevInfo } from '../../local/dev-config';
import { parse, UsageError } from '../args';
import { freshToken } from '../auth/login-session';
import { configDir } from '../auth/token-cache';
import { pinnedFetch } from '../pinned-fetch';

/** JSON-RPC's code for a server error (-32000 to -32099 are the implementation's). */
const UPSTREAM_ERROR_CODE = -32000;

/**
 * `twokey mcp [--target T] [--url URL] [--token TOKEN] [--ca FILE]`: an MCP server on stdin/stdout for clients that
 * launch a command (Claude Desktop, Claude Code, Cursor), relaying every message to the agent's MCP
 * endpoint with the caller's token: `--token` or TWOKEY_MCP_TOKEN (a workload identity's), else a
 * fresh token from `twokey login` for each request. `--target` limits the tools to one target; `--ca`
 * (or TWOKEY_MCP_CA) trusts only that certificate for the endpoint (the agent's generated one). The
 * agent decides everything; this only carries messages.
 */
export async function mcpCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { target: { type: 'string' }, url: { type: 'string' }, token: { type: 'string' }, ca: { type: 'string' }, 'data-dir': { type: 'string', default: DEFAULT_DATA_DIR } });
  const given = values.url ?? process.env.TWOKEY_MCP_URL ?? (await readDevInfo(values['data-dir'])).mcp?.url;
  if (!given) throw new UsageError('no MCP endpoint: pass --url https://agent:port/mcp (or set TWOKEY_MCP_URL)');
  const url = new URL(given);
  // The caller's token goes in every request: never in clear beyond this machine.
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopback(url.hostname))) {
    throw new UsageError(`${url.origin} would carry your token in clear: use https:// (http:// only to 127.0.0.1 or localhost)`);
  }
  if (values.target) url.searchParams.set('target', values.target);
  const caFile = values.ca ?? process.env.TWOKEY_MCP_CA;
  if (caFile && url.protocol !== 'https:') throw new UsageError('--ca pins the certificate of an https:// endpoint');
  const send = caFile ? pinnedFetch(await readFile(caFile, 'utf8')) : fetch;
  const fixed = values.token ?? process.env.TWOKEY_MCP_TOKEN;
  const bearer = (): Promise<string> => (fixed ? Promise.resolve(fixed) : freshToken(configDir()));

  const upstream = new StreamableHTTPClientTransport(url, {
    fetch: async (input, init) => {
      const headers = new Headers(init?.headers);
      headers.set('authorization', `Bearer ${await bearer()}`);
      // fetch says only "fetch failed": the cause (a certificate not trusted, a refused connection) is what the user can act on.
      return send(input, { ...init, headers }).catch((e: unknown) => {
        const cause = e instanceof Error && e.cause instanceof Error ? `: ${e.cause.message}` : '';
        throw new Error(`${e instanceof Error ? e.message : String(e)}${cause}`);
      });
    },
  });
  const local = new StdioServerTransport();
  // A request the agent could not take (refused token, endpoint down) is answered, so the client is not left waiting.
  const relay = (message: JSONRPCMessage): void => {
    upstream.send(message).catch((e: unknown) => {
      const text = e instanceof Error ? e.message : String(e);
      process.stderr.write(`twokey mcp: ${text}\n`);
      if (isJSONRPCRequest(message)) void local.send({ jsonrpc: '2.0', id: message.id, error: { code: UPSTREAM_ERROR_CODE, message: `twokey: the agent refused the request: ${text}` } });
    });
  };
  local.onmessage = relay;
  upstream.onmessage = (message) => void local.send(message);
  upstream.onerror = (e) => process.stderr.write(`twokey mcp: ${e.message}\n`);
  const closed = new Promise<void>((resolve) => (local.onclose = resolve));
  process.stdin.once('end', () => void local.close());
  await upstream.start();
  await local.start();
  await closed;
  await upstream.terminateSession().catch(() => undefined);
  await upstream.close();
  return 0;
}
