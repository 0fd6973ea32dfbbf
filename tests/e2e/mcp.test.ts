import { execFile } from 'node:child_process';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import pg from 'pg';
import { demoCustomer } from '../../local/demo/seed';
import { MAX_MCP_REQUEST_BYTES } from '../../agent/mcp/endpoint';
import { MAX_MCP_SESSIONS_PER_CALLER } from '../../agent/mcp/session-admission';
import { MAX_RESULT_BYTES } from '../../agent/mcp/postgres/caller-connection';
import { MAX_TOOL_SQL_BYTES } from '../../agent/mcp/postgres/toolset';
import { Client as SdkClient } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { TWOKEY_BIN, twokey } from '../support/cli';
import { waitFor } from '../support/control-plane';
import { callTool, endSession, McpCallers, mcpClient } from '../support/mcp-client';
import { postDecision, waitForMail } from '../support/outbox';
import { pgTarget, startPgStack, type PgStack } from '../support/pg-stack';

const POLICY = `
targets:
  - { name: test-pg, protocol: postgres, agent: pg-agent }
  - { name: test-pg-rw, protocol: postgres, agent: pg-agent, mcpWrites: { approve: { groups: [dba], timeoutSeconds: 900 } } }
reviewers: { dba: [{ subject: bob, email: bob@example.com }, { subject: carol, email: carol@example.com }] }
rules:
  - name: support
    targets: [test-pg]
    subjects: { groups: [support] }
    actions: { read: allow, write: { approve: { groups: [dba], timeoutSeconds: 900 } }, ddl: deny, admin: deny, unknown: deny }
  - name: analysts
    targets: [test-pg]
    subjects: { groups: [analyst] }
    actions: { read: allow, write: deny, ddl: deny, admin: deny, unknown: deny }
  - name: loader
    targets: [test-pg-rw]
    subjects: { users: [loader] }
    actions: { read: allow, write: allow }
masks:
  - name: pii-support
    targets: [test-pg]
    subjects: { groups: [support] }
    columns: [public.customers.email, public.customers.ssn]
    style: partial
  - name: pii-analyst
    targets: [test-pg]
    subjects: { groups: [analyst] }
    columns: [public.customers.email, public.customers.ssn]
    style: full
    strict: true
`;

describe('the MCP endpoint on the agent (official SDK client, Streamable HTTP)', () => {
  let stack: PgStack;
  let callers: McpCallers;
  const connect = (user: string, groups: string[], name?: string): Promise<Client> => callers.connect(user, groups, name);

  beforeAll(async () => {
    stack = await startPgStack({ policy: POLICY, mcp: true, extraTargets: (p) => [pgTarget(p, 'test-pg-rw')] });
    callers = new McpCallers(stack);
  }, 120_000);
  afterAll(async () => {
    await callers?.closeAll();
    await stack?.stop();
  });

  async function adminQuery(sql: string): Promise<unknown[]> {
    const c = new pg.Client({ connectionString: stack.pg.adminUrl });
    await c.connect();
    try {
      return (await c.query(sql)).rows;
    } finally {
      await c.end();
    }
  }

  const toolTargets = async (client: Client): Promise<Record<string, string[]>> => {
    const { tools } = await client.listTools();
    return Object.fromEntries(tools.map((t) => [t.name, ((t.inputSchema.properties as Record<string, { enum?: string[] }> | undefined)?.target?.enum ?? []).slice().sort()]));
  };

  it('lists to each caller only the tools and targets the policy lets them use', async () => {
    expect(await toolTargets(await connect('alice', ['support']))).toEqual({
      list_targets: [],
      describe_schema: ['test-pg'],
      query: ['test-pg'],
      execute: ['test-pg'],
      request_status: ['test-pg'],
    });
    expect(await toolTargets(await connect('dave', ['analyst']))).toEqual({ list_targets: [], describe_schema: ['test-pg'], query: ['test-pg'] });
    expect(await toolTargets(await connect('loader', []))).toEqual({
      list_targets: [],
      describe_schema: ['test-pg-rw'],
      query: ['test-pg-rw'],
      execute: ['test-pg-rw'],
      request_status: ['test-pg-rw'],
    });
    expect((await connect('erin', [])).getInstructions()).toMatch(/A write \(execute\) is held until a different person approves it/);
    const nobody = await connect('mallory', ['guests']);
    expect(await toolTargets(nobody)).toEqual({ list_targets: [] });
    expect((await callTool(nobody, 'list_targets', {})).json).toEqual({ targets: [] });
    expect(await callTool(nobody, 'query', { target: 'test-pg', sql: 'SELECT 1' })).toMatchObject({ isError: true, text: 'twokey: query is not available to you on target test-pg' });
  });

  it('returns query rows masked exactly as psql shows them, capped with a truncated flag', async () => {
    const alice = await connect('alice', ['support']);
    const r = await callTool(alice, 'query', { target: 'test-pg', sql: 'SELECT id, name, email, ssn FROM customers ORDER BY id', max_rows: 3 });
    expect(r.isError).toBe(false);
    expect(r.json.columns).toEqual(['id', 'name', 'email', 'ssn']);
    expect(r.json.rows).toHaveLength(3);
    expect(r.json.truncated).toBe(true);
    const first = r.json.rows[0] as string[];
    const raw = demoCustomer(1);
    expect(first.slice(0, 2)).toEqual(['1', raw.name]);
    expect(first[2]).not.toBe(raw.email);
    expect(first[3]).not.toBe(raw.ssn);
    expect(first[3]).toMatch(/\*/);
    const dave = await connect('dave', ['analyst']);
    expect((await callTool(dave, 'query', { target: 'test-pg', sql: 'SELECT email FROM customers WHERE id = 1' })).json.rows).toEqual([['****']]);
  });

  it('marks masked columns in describe_schema', async () => {
    const dave = await connect('dave', ['analyst']);
    const r = await callTool(dave, 'describe_schema', { target: 'test-pg', schema: 'public' });
    const customers = (r.json.tables as { table: string; columns: { name: string; masked?: unknown }[] }[]).find((t) => t.table === 'customers');
    expect(customers?.columns.find((c) => c.name === 'ssn')?.masked).toEqual({ style: 'full', strict: true });
    expect(customers?.columns.find((c) => c.name === 'name')?.masked).toBeUndefined();
  });

  it('refuses in strict mode what would infer a masked value, as a tool error with the twokey message', async () => {
    const dave = await connect('dave', ['analyst']);
    const r = await callTool(dave, 'query', { target: 'test-pg', sql: "SELECT id FROM customers WHERE ssn LIKE '1%'" });
    expect(r).toMatchObject({ isError: true });
    expect(r.text).toMatch(/^twokey: column public\.customers\.ssn is masked \(strict\) and cannot be used in WHERE/);
  });

  it('refuses a write through query, and a write the policy denies through execute', async () => {
    const alice = await connect('alice', ['support']);
    expect(await callTool(alice, 'query', { target: 'test-pg', sql: "UPDATE customers SET name = 'x' WHERE id = 1" })).toMatchObject({ isError: true, text: 'twokey: query runs reads only, and this statement is classified write: use execute' });
    expect((await callTool(alice, 'query', { target: 'test-pg', sql: 'SELECT 1; SELECT 2' })).text).toMatch(/^twokey: send one statement per call/);
    const dave = await connect('dave', ['analyst']);
    expect(await callTool(dave, 'execute', { target: 'test-pg', sql: "UPDATE customers SET name = 'x' WHERE id = 1" })).toMatchObject({ isError: true, text: 'twokey: execute is not available to you on target test-pg' });
  });

  it('holds an MCP write for review where the policy lets the same caller write freely (mcpWrites), and runs it once approved', async () => {
    const loader = await connect('loader', [], 'ci-bot');
    const held = await callTool(loader, 'execute', { target: 'test-pg-rw', sql: "UPDATE customers SET name = 'Loaded by AI' WHERE id = 30" });
    expect(held.json).toMatchObject({ status: 'pending_approval', reviewers: ['dba'] });
    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', 'Loaded by AI');
    expect(mail.text).toContain('(rule mcpWrites)');
    expect(mail.subject).toBe("[twokey] loader's AI agent asks to run a write on test-pg-rw");
    expect((await postDecision(mail.link, mail.token, 'approve')).status).toBe(200);
    expect((await waitForStatus(loader, held.json.request_id, 'approved', 'test-pg-rw')).result).toMatchObject({ command: 'UPDATE', row_count: 1 });
    expect(await adminQuery('SELECT name FROM customers WHERE id = 30')).toEqual([{ name: 'Loaded by AI' }]);
    // The same caller with psql, claiming to be the MCP bridge: allowed, so it runs on the read credential, which cannot write.
    const psql = await psqlAs('loader', 'test-pg-rw', 'twokey-mcp', "UPDATE customers SET name = 'By hand' WHERE id = 30");
    expect(psql.stderr).toContain('cannot execute UPDATE in a read-only transaction');
  });

  it('holds an execute for review, runs it once bob approves from the mailed link, and reports it in request_status', async () => {
    const alice = await connect('alice', ['support'], 'claude-code');
    const held = await callTool(alice, 'execute', { target: 'test-pg', sql: "UPDATE customers SET name = 'Via MCP' WHERE id = 31", reason: 'ticket 42' });
    expect(held.json).toMatchObject({ status: 'pending_approval', reviewers: ['dba'] });
    expect(held.json.request_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(Date.parse(held.json.expires_at) - Date.now()).toBeGreaterThan(800_000);
    expect((await callTool(alice, 'request_status', { target: 'test-pg', request_id: held.json.request_id })).json).toMatchObject({ status: 'pending_approval' });
    const other = await connect('sue', ['support']);
    expect(await callTool(other, 'request_status', { target: 'test-pg', request_id: held.json.request_id })).toMatchObject({ isError: true, text: `twokey: no request ${held.json.request_id} of yours through MCP on test-pg` });
    expect(await adminQuery('SELECT name FROM customers WHERE id = 31')).toEqual([{ name: demoCustomer(31).name }]);

    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', 'Via MCP');
    expect(mail.text).toContain('ticket 42');
    expect(mail.text).toContain('Sent by: an AI agent through MCP (client: claude-code 1.0.0)');
    const page = await (await fetch(mail.link)).text();
    expect(page).toContain('<dd id="via"><strong>an AI agent through MCP (client: claude-code 1.0.0)</strong></dd>');
    expect((await postDecision(mail.link, mail.token, 'approve')).status).toBe(200);
    const done = await waitForStatus(alice, held.json.request_id, 'approved');
    expect(done.result).toMatchObject({ command: 'UPDATE', row_count: 1 });
    expect(await adminQuery('SELECT name FROM customers WHERE id = 31')).toEqual([{ name: 'Via MCP' }]);
  });

  it('reports a denied execute with the reviewer and comment, and nothing runs', async () => {
    const alice = await connect('alice', ['support']);
    const held = await callTool(alice, 'execute', { target: 'test-pg', sql: "UPDATE customers SET name = 'Denied MCP' WHERE id = 32" });
    const mail = await waitForMail(stack.cp.outboxDir, 'carol@example.com', 'Denied MCP');
    expect((await postDecision(mail.link, mail.token, 'deny', 'not today')).status).toBe(200);
    const denied = await waitForStatus(alice, held.json.request_id, 'denied');
    expect(denied.message).toMatch(/^twokey: request [0-9a-f-]{36} denied by carol@example.com: not today$/);
    expect(await adminQuery('SELECT name FROM customers WHERE id = 32')).toEqual([{ name: demoCustomer(32).name }]);
  });

  it('waits wait_seconds for a decision, then returns pending_approval', async () => {
    const alice = await connect('alice', ['support']);
    const startedAt = Date.now();
    const held = await callTool(alice, 'execute', { target: 'test-pg', sql: "UPDATE customers SET name = 'Slow' WHERE id = 33", wait_seconds: 2 });
    const tookMs = Date.now() - startedAt;
    expect(held.json).toMatchObject({ status: 'pending_approval' });
    expect(tookMs).toBeGreaterThanOrEqual(2_000);
    expect(tookMs).toBeLessThan(30_000);
  });

  it('returns the result within the same call when the approval arrives during wait_seconds', async () => {
    const alice = await connect('alice', ['support']);
    const call = callTool(alice, 'execute', { target: 'test-pg', sql: "UPDATE customers SET name = 'Quick' WHERE id = 34", wait_seconds: 45 });
    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', "'Quick'");
    await postDecision(mail.link, mail.token, 'approve');
    expect((await call).json).toMatchObject({ status: 'approved', command: 'UPDATE', row_count: 1 });
  });

  it('answers 401 with protected-resource metadata naming the issuer, for no token and for an expired one', async () => {
    const url = stack.mcpUrl();
    const none = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(none.status).toBe(401);
    const challenge = none.headers.get('www-authenticate') ?? '';
    const metadataUrl = /resource_metadata="([^"]+)"/.exec(challenge)?.[1] ?? '';
    const metadata = (await (await fetch(metadataUrl)).json()) as { resource: string; authorization_servers: string[] };
    // Every issuer the agent trusts: the IdP's, and the control plane's own (SAML sign-ins' tokens).
    expect(metadata).toMatchObject({ resource: url });
    expect([...metadata.authorization_servers].sort()).toEqual([stack.cp.issuer, `${stack.cp.httpUrl}/tokens`].sort());

    const lower = await fetch(url, { method: 'POST', headers: { authorization: `bearer ${await stack.token('alice', ['support'])}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'curl', version: '8' } } }) });
    expect(lower.status).toBe(200);
    const expired = await stack.token('alice', ['support'], { ttlSeconds: -120 });
    await expect(mcpClient(url, expired)).rejects.toThrow(/token rejected \(expired\)/);
    const raw = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${expired}`, 'content-type': 'application/json' }, body: '{}' });
    expect(raw.status).toBe(401);
    expect(raw.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
  });

  it('refuses oversized arguments as a tool error, and an oversized request with 413', async () => {
    const alice = await connect('alice', ['support']);
    const long = `SELECT '${'x'.repeat(MAX_TOOL_SQL_BYTES)}'`;
    const r = await callTool(alice, 'query', { target: 'test-pg', sql: long });
    expect(r).toMatchObject({ isError: true });
    expect(r.text).toMatch(/^twokey: invalid arguments: sql: at most 65536 bytes/);
    const res = await fetch(stack.mcpUrl(), {
      method: 'POST',
      headers: { authorization: `Bearer ${await stack.token('alice', ['support'])}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { pad: 'x'.repeat(MAX_MCP_REQUEST_BYTES) } }),
    });
    expect(res.status).toBe(413);
  });

  it('refuses a session id presented with another caller token, and a caller past their session cap', async () => {
    const alice = await connect('alice', ['support']);
    const sessionId = (alice.transport as { sessionId?: string }).sessionId ?? '';
    const res = await fetch(stack.mcpUrl(), {
      method: 'POST',
      headers: { authorization: `Bearer ${await stack.token('dave', ['analyst'])}`, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18', 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'query', arguments: { target: 'test-pg', sql: 'SELECT ssn FROM customers' } } }),
    });
    expect(res.status).toBe(403);
    expect(await res.json()).toEqual({ error: 'twokey: this MCP session belongs to someone else' });

    const token = await stack.token('sam', ['support']);
    const opened: Client[] = [];
    for (let i = 0; i < MAX_MCP_SESSIONS_PER_CALLER; i++) opened.push(await mcpClient(stack.mcpUrl(), token));
    await expect(mcpClient(stack.mcpUrl(), token)).rejects.toThrow(`you have ${MAX_MCP_SESSIONS_PER_CALLER} MCP sessions open`);
    await endSession(opened[0] as Client);
    opened[0] = await mcpClient(stack.mcpUrl(), token);
    await Promise.all(opened.map((c) => endSession(c)));
  });

  it('keeps a query answer to MAX_RESULT_BYTES of values, flagged truncated', async () => {
    const alice = await connect('alice', ['support']);
    const r = await callTool(alice, 'query', { target: 'test-pg', sql: "SELECT repeat('x', 1048576) FROM generate_series(1, 10)" });
    expect(r.json.rows).toHaveLength(MAX_RESULT_BYTES / 1048576);
    expect(r.json.truncated).toBe(true);
  });

  it('records each tool call in the target recording, which twokey replay shows', async () => {
    const rhea = await mcpClient(stack.mcpUrl(), await stack.token('rhea', ['support']), 'replay-agent');
    await callTool(rhea, 'query', { target: 'test-pg', sql: 'SELECT id, ssn FROM customers WHERE id = 5' });
    expect(await callTool(rhea, 'query', { target: 'test-pg', sql: 'SELECT nope FROM customers' })).toMatchObject({ isError: true, text: 'column "nope" does not exist' });
    expect((await callTool(rhea, 'query', { target: 'test-pg', sql: 'SELECT 2 AS two' })).json.rows).toEqual([['2']]);
    await callTool(rhea, 'query', { target: 'test-pg', sql: "DELETE FROM customers WHERE ssn = '123-45-6789'" });
    await endSession(rhea);
    const erin = await stack.apiToken('erin', ['auditor']);
    const cli = (args: string[]) => twokey([...args, '--url', stack.cp.httpUrl], { TWOKEY_TOKEN: erin });
    const session = await waitFor(
      async () => {
        const listed = JSON.parse((await cli(['sessions', 'list', '--user', 'rhea', '--json'])).stdout) as { sessions: { sessionId: string; protocol: string; status: string }[] };
        return listed.sessions.find((x) => x.protocol === 'mcp' && x.status !== 'live');
      },
      30_000,
      'the MCP session recorded and ended',
    );
    const replay = (await cli(['replay', session?.sessionId ?? ''])).stdout;
    // The reads of one MCP session ran in one Postgres session (its statements and masked rows are recorded there).
    const listed = JSON.parse((await cli(['sessions', 'list', '--user', 'rhea', '--json'])).stdout) as { sessions: { sessionId: string; protocol: string }[] };
    const pgSessions = listed.sessions.filter((x) => x.protocol === 'postgres');
    expect(pgSessions).toHaveLength(1);
    const statements = (await cli(['replay', pgSessions[0]?.sessionId ?? ''])).stdout;
    expect(statements).toContain('SELECT id, ssn FROM customers WHERE id = 5');
    expect(statements).toContain('SELECT 2 AS two');
    expect(statements).toContain('(twokey-mcp)');
    expect(replay).toContain('connected to test-pg from 127.0.0.1');
    expect(replay).toContain('(MCP: replay-agent 1.0.0)');
    expect(replay).toContain('mcp> query {"target":"test-pg","sql":"SELECT id, ssn FROM customers WHERE id = 5"}');
    expect(replay).toMatch(/-- allow: SELECT 1; columns: id, ssn in \d+ ms/);
    // The SSN the caller wrote is masked in the recording as a statement's literal would be.
    expect(replay).not.toContain('123-45-6789');
    expect(replay).toMatch(/-- deny, refused: twokey: query runs reads only, and this statement is classified write: use execute in \d+ ms/);
    expect(replay).toContain('-- session ended (the MCP session ended)');
  });

  it('does not label a psql write as MCP even when its application_name says so', async () => {
    const run = psqlAs('alice', 'test-pg', 'twokey-mcp', "UPDATE customers SET name = 'Psql Not MCP' WHERE id = 35");
    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', 'Psql Not MCP');
    expect(mail.text).not.toContain('Sent by:');
    expect(mail.subject).toBe('[twokey] alice asks to run a write on test-pg');
    await postDecision(mail.link, mail.token, 'deny');
    await run;
  });

  /** The official SDK client launching `twokey mcp` as Claude Desktop or Cursor would. */
  async function bridged(token: string, ...args: string[]): Promise<Client> {
    const client = new SdkClient({ name: 'desktop-app', version: '2.0.0' });
    const transport = new StdioClientTransport({ command: process.execPath, args: [TWOKEY_BIN, 'mcp', '--url', stack.mcpUrl(), ...args], env: { ...(process.env as Record<string, string>), TWOKEY_MCP_TOKEN: token }, stderr: 'pipe' });
    try {
      await client.connect(transport);
    } catch (e) {
      await transport.close();
      throw e;
    }
    return client;
  }

  it('serves the same tools through the stdio bridge, limited to the target it names', async () => {
    const client = callers.adopt(await bridged(await stack.token('alice', ['support']), '--target', 'test-pg'));
    expect(Object.keys(await toolTargets(client)).sort()).toEqual(['describe_schema', 'execute', 'list_targets', 'query', 'request_status']);
    expect((await callTool(client, 'list_targets', {})).json).toEqual({ targets: [{ name: 'test-pg', protocol: 'postgres', tools: ['describe_schema', 'query', 'execute', 'request_status'] }] });
    const r = await callTool(client, 'query', { target: 'test-pg', sql: 'SELECT ssn FROM customers WHERE id = 2' });
    expect(r.json.rows).toHaveLength(1);
    expect(r.json.rows[0][0]).not.toBe(demoCustomer(2).ssn);
    const loader = callers.adopt(await bridged(await stack.token('loader', []), '--target', 'test-pg'));
    expect(Object.keys(await toolTargets(loader))).toEqual(['list_targets']);
  });

  it('answers through the bridge with the agent refusal of an expired token, not a hang', async () => {
    const expired = await stack.token('alice', ['support'], { ttlSeconds: -120 });
    await expect(bridged(expired)).rejects.toThrow(/twokey: the agent refused the request: .*token rejected \(expired\)/);
  });

  /** psql as `user` on a target with an application_name, one command. */
  async function psqlAs(user: string, target: string, applicationName: string, command: string): Promise<{ stdout: string; stderr: string }> {
    const { host, port } = stack.endpoint(target);
    const token = await stack.token(user, user === 'loader' ? [] : ['support']);
    return new Promise((resolve) =>
      execFile('psql', [`host=${host} port=${port} dbname=demo user=${user} application_name=${applicationName}`, '-X', '-c', command], { env: { ...process.env, PGPASSWORD: token }, timeout: 60_000 }, (_e, stdout, stderr) =>
        resolve({ stdout, stderr }),
      ),
    );
  }

  async function waitForStatus(client: Client, requestId: string, status: string, target = 'test-pg'): Promise<{ status: string; result?: any; message?: string }> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const r = await callTool(client, 'request_status', { target, request_id: requestId });
      if (r.json?.status === status) return r.json;
      if (Date.now() > deadline) throw new Error(`request ${requestId} is ${r.text}, not ${status}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
});
