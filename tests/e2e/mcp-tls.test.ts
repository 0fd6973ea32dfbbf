import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { MCP_GENERATED_TLS_DIR } from '../../agent/config';
import { selfSignedCertificate } from '../../agent/kubernetes/tls';
import { pinnedFetch } from '../../cli/pinned-fetch';
import { TWOKEY_BIN } from '../support/cli';
import { callTool } from '../support/mcp-client';
import { startPgStack, type PgStack } from '../support/pg-stack';

/** The name clients use for the endpoint (metadata and the generated certificate name it). */
const PUBLIC_URL = 'https://mcp.twokey.test:8443';

describe('the MCP endpoint over TLS with the certificate the agent generated', () => {
  let stack: PgStack;
  let caPem: string;
  let caFile: string;
  const clients: Client[] = [];
  const endpoint = (): string => stack.agent.mcp?.endpoint ?? '';
  const httpsUrl = (): string => `https://${endpoint()}/mcp`;

  beforeAll(async () => {
    stack = await startPgStack({ mcp: true, mcpOptions: { tls: 'generated', publicUrl: PUBLIC_URL } });
    caFile = join(stack.agent.context.stateDir, MCP_GENERATED_TLS_DIR, 'cert.pem');
    caPem = readFileSync(caFile, 'utf8');
  }, 120_000);
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await stack?.stop();
  });

  /** The official SDK client at `url`, with `fetch` (the platform's, trusting the system roots, when absent). */
  async function connect(url: string, fetch?: typeof globalThis.fetch): Promise<Client> {
    const client = new Client({ name: 'tls-agent', version: '1.0.0' });
    const token = await stack.token('alice', ['support']);
    await client.connect(new StreamableHTTPClientTransport(new URL(url), { fetch, requestInit: { headers: { authorization: `Bearer ${token}` } } }));
    clients.push(client);
    return client;
  }

  it('serves the SDK client over https when it pins the generated certificate, and names the public https URL in its metadata', async () => {
    const client = await connect(httpsUrl(), pinnedFetch(caPem));
    const r = await callTool(client, 'query', { target: 'test-pg', sql: 'SELECT 41 + 1 AS answer' });
    expect(r.json).toMatchObject({ columns: ['answer'], rows: [['42']] });
    const metadata = await pinnedFetch(caPem)(`https://${endpoint()}/.well-known/oauth-protected-resource/mcp`);
    expect(((await metadata.json()) as { resource: string }).resource).toBe(`${PUBLIC_URL}/mcp`);
  });

  it('refuses a plain http client, a client trusting only the system roots, and one pinning another certificate', async () => {
    await expect(connect(`http://${endpoint()}/mcp`)).rejects.toThrow();
    await expect(connect(httpsUrl())).rejects.toThrow(/fetch failed/);
    await expect(fetch(httpsUrl(), { method: 'POST' }).catch((e: Error) => Promise.reject(e.cause as Error))).rejects.toThrow(/self[- ]signed certificate/);
    const other = selfSignedCertificate('impostor', ['127.0.0.1', 'localhost']).cert;
    await expect(connect(httpsUrl(), pinnedFetch(other))).rejects.toThrow(/self[- ]signed certificate|unable to verify/);
  });

  it('presents a certificate naming the public URL host, and refuses to be taken for another host', async () => {
    // The generated certificate names localhost, 127.0.0.1 (the listen host) and the public URL's host; no other name matches.
    const as = (host: string): Promise<number | Error> => pinnedFetch(caPem)(httpsUrl(), { headers: { host } }).then((r) => r.status, (e: Error) => e);
    expect(await as('mcp.twokey.test')).toBe(401);
    expect(String(await as('agent.example'))).toMatch(/Hostname\/IP does not match certificate's altnames: Host: agent\.example/);
  });

  it('relays through the twokey mcp bridge when it pins the certificate with --ca, and reports the refusal without it', async () => {
    const token = await stack.token('alice', ['support']);
    const bridged = async (...args: string[]): Promise<Client> => {
      const client = new Client({ name: 'desktop-app', version: '2.0.0' });
      const transport = new StdioClientTransport({ command: process.execPath, args: [TWOKEY_BIN, 'mcp', '--url', httpsUrl(), ...args], env: { ...(process.env as Record<string, string>), TWOKEY_MCP_TOKEN: token }, stderr: 'pipe' });
      try {
        await client.connect(transport);
      } catch (e) {
        await transport.close();
        throw e;
      }
      clients.push(client);
      return client;
    };
    const client = await bridged('--ca', caFile, '--target', 'test-pg');
    expect((await callTool(client, 'query', { target: 'test-pg', sql: 'SELECT 1 AS one' })).json).toMatchObject({ rows: [['1']] });
    await expect(bridged('--target', 'test-pg')).rejects.toThrow(/twokey: the agent refused the request: .*fetch failed: self[- ]signed certificate/);
  });

  it('keeps the --ca pin when NODE_TLS_REJECT_UNAUTHORIZED=0 is in the environment: an endpoint with another certificate gets no token', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'twokey-pin-'));
    try {
      const otherFile = join(dir, 'other.pem');
      writeFileSync(otherFile, selfSignedCertificate('impostor', ['127.0.0.1', 'localhost']).cert);
      const token = await stack.token('alice', ['support']);
      const client = new Client({ name: 'desktop-app', version: '2.0.0' });
      const transport = new StdioClientTransport({
        command: process.execPath,
        args: [TWOKEY_BIN, 'mcp', '--url', httpsUrl(), '--ca', otherFile, '--target', 'test-pg'],
        env: { ...(process.env as Record<string, string>), TWOKEY_MCP_TOKEN: token, NODE_TLS_REJECT_UNAUTHORIZED: '0' },
        stderr: 'pipe',
      });
      try {
        await expect(client.connect(transport)).rejects.toThrow(/twokey: the agent refused the request: .*(self[- ]signed certificate|unable to verify)/);
      } finally {
        await transport.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
