import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect as connectTcp, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { demoCustomer } from '../../local/demo/seed';
import { MAX_MCP_SESSIONS, MAX_MCP_SESSIONS_PER_CALLER } from '../../agent/mcp/session-admission';
import { MAX_MCP_REQUESTS_IN_FLIGHT_PER_CALLER } from '../../agent/mcp/endpoint';
import { MAX_PENDING_EXECUTIONS_PER_CALLER, MAX_TRACKED_RESULT_BYTES } from '../../agent/mcp/held-executions';
import { twokey } from '../support/cli';
import { callTool, endSession, McpCallers, mcpClient } from '../support/mcp-client';
import { postDecision, waitForMail } from '../support/outbox';
import { waitFor } from '../support/control-plane';
import { startPgStack, type PgStack } from '../support/pg-stack';

const POLICY = `
targets:
  - { name: test-pg, protocol: postgres, agent: pg-agent }
reviewers: { dba: [{ subject: bob, email: bob@example.com }] }
rules:
  - name: support
    targets: [test-pg]
    subjects: { groups: [support] }
    actions: { read: allow, write: { approve: { groups: [dba], timeoutSeconds: 900 } }, ddl: deny, admin: deny, unknown: deny }
masks:
  - name: pii-support
    targets: [test-pg]
    subjects: { groups: [support] }
    columns: [public.customers.email, public.customers.ssn]
    style: partial
`;

const INITIALIZE = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
const JSON_RPC_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

/** An outsider's attacks on the agent's MCP endpoint: raw HTTP and the official SDK client. */
describe('the MCP endpoint under attack', () => {
  let stack: PgStack;
  let callers: McpCallers;
  const connect = (user: string, groups: string[], name?: string, version?: string): Promise<Client> => callers.connect(user, groups, name, version);

  beforeAll(async () => {
    stack = await startPgStack({ policy: POLICY, mcp: true });
    callers = new McpCallers(stack);
  }, 120_000);
  afterAll(async () => {
    await callers?.closeAll();
    await stack?.stop();
  });

  /** A TCP connection to the endpoint from `localAddress` that sends nothing; resolves once connected. */
  const idleSocket = (localAddress: string): Promise<Socket> =>
    new Promise((resolve, reject) => {
      const url = new URL(stack.mcpUrl());
      const socket = connectTcp({ host: url.hostname, port: Number(url.port), localAddress });
      socket.once('connect', () => resolve(socket)).once('error', reject);
    });
  const closed = (socket: Socket): Promise<void> => new Promise((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));

  it('ends a connection that sends no request within the header timeout, and keeps serving meanwhile', async () => {
    const silent = await Promise.all(Array.from({ length: 50 }, () => idleSocket('127.0.0.1')));
    try {
      const started = Date.now();
      const answer = await fetch(stack.mcpUrl(), { method: 'POST', headers: JSON_RPC_HEADERS, body: INITIALIZE });
      expect(answer.status).toBe(401);
      await Promise.all(silent.map(closed));
      expect(Date.now() - started).toBeLessThan(15_000);
    } finally {
      for (const socket of silent) socket.destroy();
    }
  }, 30_000);

  const sessionIdOf = (client: Client): string => (client.transport as { sessionId?: string }).sessionId ?? '';

  /** An execute that waits while bob approves it from the mailed link (found by `marker` in the statement). */
  async function approvedExecute(client: Client, sql: string, marker: string): Promise<Awaited<ReturnType<typeof callTool>>> {
    const call = callTool(client, 'execute', { target: 'test-pg', sql, wait_seconds: 45 });
    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', marker);
    expect((await postDecision(mail.link, mail.token, 'approve')).status).toBe(200);
    return call;
  }

  /** A POST to /mcp with headers given as raw name/value pairs (so a header may appear twice). */
  function rawPost(rawHeaders: [string, string][], body: string): Promise<{ status: number; body: string }> {
    const url = new URL(stack.mcpUrl());
    return new Promise((resolve, reject) => {
      const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: [['host', url.host], ...rawHeaders].flat() as unknown as Record<string, string> }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  it('holds no more than MAX_PENDING_EXECUTIONS_PER_CALLER writes of one caller even when the calls arrive at once', async () => {
    const alice = await connect('pat', ['support']);
    const sent = MAX_PENDING_EXECUTIONS_PER_CALLER + 5;
    const answers = await Promise.all(Array.from({ length: sent }, (_, i) => callTool(alice, 'execute', { target: 'test-pg', sql: `UPDATE customers SET name = 'flood ${i}' WHERE id = ${100 + i}` })));
    expect(answers.filter((a) => !a.isError && a.json.status === 'pending_approval')).toHaveLength(MAX_PENDING_EXECUTIONS_PER_CALLER);
    const refused = answers.filter((a) => a.isError);
    expect(refused).toHaveLength(sent - MAX_PENDING_EXECUTIONS_PER_CALLER);
    expect(refused[0]?.text).toBe(`twokey: you have ${MAX_PENDING_EXECUTIONS_PER_CALLER} requests awaiting review through MCP, the most one caller may`);
  }, 120_000);

  it('opens no more than MAX_MCP_SESSIONS_PER_CALLER sessions of one caller even when the initializes arrive at once', async () => {
    const token = await stack.token('quinn', ['support']);
    const sent = MAX_MCP_SESSIONS_PER_CALLER + 10;
    const answers = await Promise.all(Array.from({ length: sent }, () => fetch(stack.mcpUrl(), { method: 'POST', headers: { ...JSON_RPC_HEADERS, authorization: `Bearer ${token}` }, body: INITIALIZE })));
    const opened = answers.filter((a) => a.status === 200);
    expect(opened).toHaveLength(MAX_MCP_SESSIONS_PER_CALLER);
    expect(answers.filter((a) => a.status === 429)).toHaveLength(sent - MAX_MCP_SESSIONS_PER_CALLER);
    await Promise.all(opened.map((a) => fetch(stack.mcpUrl(), { method: 'DELETE', headers: { authorization: `Bearer ${token}`, 'mcp-session-id': a.headers.get('mcp-session-id') ?? '', 'mcp-protocol-version': '2025-06-18' } })));
    // The refused ones left nothing behind: the caller opens sessions again.
    expect((await fetch(stack.mcpUrl(), { method: 'POST', headers: { ...JSON_RPC_HEADERS, authorization: `Bearer ${token}` }, body: INITIALIZE })).status).toBe(200);
  }, 60_000);

  it('lets another caller in when a few callers at their session cap fill the agent, and tells a full agent apart with a JSON-RPC error', async () => {
    // Ten callers at their cap fill the agent (with the sessions earlier tests left open, the last ones even the shares out).
    const hogs: Client[] = [];
    for (let h = 0; h < Math.ceil(MAX_MCP_SESSIONS / MAX_MCP_SESSIONS_PER_CALLER); h++) {
      const token = await stack.token(`hog-${h}`, ['support']);
      for (let i = 0; i < MAX_MCP_SESSIONS_PER_CALLER; i++) {
        const client = await mcpClient(stack.mcpUrl(), token).catch(() => undefined);
        if (!client) break;
        hogs.push(client);
      }
    }
    expect(hogs.length).toBeGreaterThan(MAX_MCP_SESSIONS - MAX_MCP_SESSIONS_PER_CALLER);
    /** The hogs' clients whose session the agent ended. */
    const ended = async (): Promise<Set<Client>> => new Set((await Promise.all(hogs.map((c) => c.listTools().then(() => undefined, () => c)))).filter((c) => c !== undefined));
    const before = await ended();
    try {
      const newcomer = await mcpClient(stack.mcpUrl(), await stack.token('newcomer', ['support']));
      hogs.push(newcomer);
      expect((await callTool(newcomer, 'list_targets', {})).json).toMatchObject({ targets: [{ name: 'test-pg' }] });
      // One hog session made room (the least recently used of a caller holding the most); its client is told to start anew.
      const after = [...(await ended())].filter((c) => !before.has(c));
      expect(after).toHaveLength(1);
      await expect((after[0] as Client).listTools()).rejects.toThrow(/"code":-32001,"message":"twokey: no such MCP session \(it ended\): start a new one"/);
      // The hogs cannot take sessions back from each other: the agent is full for them, and says so.
      await expect(mcpClient(stack.mcpUrl(), await stack.token('hog-0', ['support']))).rejects.toThrow(
        `"code":-32000,"message":"twokey: the agent has ${MAX_MCP_SESSIONS} MCP sessions, the most it takes, and no caller holds more than you would: try again later"`,
      );
    } finally {
      await Promise.all(hogs.map((c) => endSession(c).catch(() => c.close())));
    }
  }, 120_000);

  it('ends no other caller\'s session for a request that opens none (a GET or a non-initialize POST without a session id)', async () => {
    const post = (token: string, body: string, sessionId?: string) =>
      fetch(stack.mcpUrl(), { method: 'POST', headers: { ...JSON_RPC_HEADERS, authorization: `Bearer ${token}`, ...(sessionId ? { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' } : {}) }, body });
    const PING = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' });
    const held: { token: string; id: string }[] = [];
    for (let h = 0; h < Math.ceil(MAX_MCP_SESSIONS / MAX_MCP_SESSIONS_PER_CALLER); h++) {
      const token = await stack.token(`filler-${h}`, ['support']);
      for (let i = 0; i < MAX_MCP_SESSIONS_PER_CALLER; i++) {
        const res = await post(token, INITIALIZE);
        if (res.status !== 200) break;
        held.push({ token, id: res.headers.get('mcp-session-id') ?? '' });
      }
    }
    const alive = async (): Promise<string[]> => (await Promise.all(held.map(async (s) => ((await post(s.token, PING, s.id)).status === 200 ? s.id : '')))).filter(Boolean);
    const before = await alive();
    try {
      const intruder = await stack.token('intruder', ['support']);
      for (let i = 0; i < 3; i++) {
        const get = await fetch(stack.mcpUrl(), { headers: { accept: 'text/event-stream', authorization: `Bearer ${intruder}` } });
        expect(get.status).toBe(400);
        expect((await post(intruder, PING)).status).toBe(400);
      }
      expect(await alive()).toEqual(before);
    } finally {
      await Promise.all(held.map((s) => fetch(stack.mcpUrl(), { method: 'DELETE', headers: { authorization: `Bearer ${s.token}`, 'mcp-session-id': s.id, 'mcp-protocol-version': '2025-06-18' } })));
    }
  }, 120_000);

  it('refuses a request from a web page of another origin (DNS rebinding), and takes the endpoint own origin', async () => {
    const token = await stack.token('alice', ['support']);
    const foreign = await fetch(stack.mcpUrl(), { method: 'POST', headers: { ...JSON_RPC_HEADERS, origin: 'http://rebound.example:80', authorization: `Bearer ${token}` }, body: INITIALIZE });
    expect(foreign.status).toBe(403);
    expect(await foreign.json()).toEqual({ error: 'twokey: requests from a web page of another origin are refused' });
    const own = await fetch(stack.mcpUrl(), { method: 'POST', headers: { ...JSON_RPC_HEADERS, origin: new URL(stack.mcpUrl()).origin, authorization: `Bearer ${token}` }, body: INITIALIZE });
    expect(own.status).toBe(200);
  });

  it('answers a caller past MAX_MCP_REQUESTS_IN_FLIGHT_PER_CALLER requests under way with 429, while another caller is served', async () => {
    const mallory = await stack.token('mallory', ['support']);
    const url = new URL(stack.mcpUrl());
    // Requests whose bodies never finish: each holds a connection until the request timeout.
    const stalled = Array.from({ length: MAX_MCP_REQUESTS_IN_FLIGHT_PER_CALLER }, () => {
      const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { ...JSON_RPC_HEADERS, authorization: `Bearer ${mallory}`, 'content-length': String(INITIALIZE.length) } });
      req.on('error', () => undefined);
      req.write(INITIALIZE.slice(0, 10));
      return req;
    });
    try {
      const refused = await waitFor(async () => {
        const r = await fetch(stack.mcpUrl(), { method: 'POST', headers: { ...JSON_RPC_HEADERS, authorization: `Bearer ${mallory}` }, body: INITIALIZE });
        return r.status === 429 ? r : undefined;
      }, 20_000, 'the caller refused past its requests under way');
      expect(((await refused.json()) as { error: { message: string } }).error.message).toContain(`twokey: ${MAX_MCP_REQUESTS_IN_FLIGHT_PER_CALLER} of your requests are under way`);
      const alice = await connect('alice', ['support']);
      expect((await callTool(alice, 'list_targets', {})).isError).toBeFalsy();
    } finally {
      for (const req of stalled) req.destroy();
    }
    // Once they are gone, the caller is served again.
    await waitFor(async () => ((await fetch(stack.mcpUrl(), { method: 'POST', headers: { ...JSON_RPC_HEADERS, authorization: `Bearer ${mallory}` }, body: INITIALIZE })).status === 200 ? true : undefined), 20_000, 'the caller served again');
  });

  it('refuses a request with two Authorization headers instead of picking one of the callers', async () => {
    const alice = await stack.token('alice', ['support']);
    const mallory = await stack.token('mallory', ['support']);
    const r = await rawPost([['authorization', `Bearer ${alice}`], ['authorization', `Bearer ${mallory}`], ...Object.entries(JSON_RPC_HEADERS)], INITIALIZE);
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body)).toEqual({ error: 'twokey: send one Authorization header' });
  });

  it('does not let another caller end a session (DELETE), and the session keeps serving its owner', async () => {
    const alice = await connect('alice', ['support']);
    const res = await fetch(stack.mcpUrl(), { method: 'DELETE', headers: { authorization: `Bearer ${await stack.token('mallory', ['support'])}`, 'mcp-session-id': sessionIdOf(alice), 'mcp-protocol-version': '2025-06-18' } });
    expect(res.status).toBe(403);
    expect((await callTool(alice, 'query', { target: 'test-pg', sql: 'SELECT 1 AS one' })).json.rows).toEqual([['1']]);
  });

  it('takes an expired token on a live session for no request, and the owner continues with a fresh token', async () => {
    const alice = await connect('alice', ['support']);
    const headers = (token: string) => ({ ...JSON_RPC_HEADERS, authorization: `Bearer ${token}`, 'mcp-session-id': sessionIdOf(alice), 'mcp-protocol-version': '2025-06-18' });
    const call = JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'query', arguments: { target: 'test-pg', sql: 'SELECT 2 AS two' } } });
    const expired = await fetch(stack.mcpUrl(), { method: 'POST', headers: headers(await stack.token('alice', ['support'], { ttlSeconds: -120 })), body: call });
    expect(expired.status).toBe(401);
    const fresh = await fetch(stack.mcpUrl(), { method: 'POST', headers: headers(await stack.token('alice', ['support'])), body: call });
    expect(fresh.status).toBe(200);
    expect(JSON.parse(((await fresh.json()) as { result: { content: { text: string }[] } }).result.content[0]?.text ?? '')).toMatchObject({ rows: [['2']] });
  });

  it('shows reviewers a hostile client name escaped and cut, never as markup, lines or reordered text', async () => {
    const name = `Bob (human)\r\nApproved: yes\u202E<img src=x onerror=alert(1)>${'n'.repeat(10_000)}`;
    const hostile = await connect('alice', ['support'], name, `9\u0007\u001b[31m${'v'.repeat(10_000)}`);
    const held = await callTool(hostile, 'execute', { target: 'test-pg', sql: "UPDATE customers SET name = 'Hostile name' WHERE id = 41" });
    expect(held.json).toMatchObject({ status: 'pending_approval' });
    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', 'Hostile name');
    const sentBy = /^Sent by: (.*)$/m.exec(mail.text)?.[1] ?? '';
    expect(sentBy).toMatch(/^an AI agent through MCP \(client: Bob \(human\)\\u000D\\u000AApproved: yes\\u202E<img/);
    expect(sentBy.length).toBeLessThan(300);
    expect(mail.text).not.toMatch(/^Approved: yes/m);
    expect(mail.text).not.toContain('\u202E');
    expect(mail.text).not.toContain('\u001b');
    const page = await (await fetch(mail.link)).text();
    expect(page).not.toContain('<img src=x');
    expect(page).toContain('&#60;img src=x onerror=alert(1)&#62;');
    await postDecision(mail.link, mail.token, 'deny');
  }, 60_000);

  it('shows reviewers a reason with backslashes and quotes exactly as the caller gave it', async () => {
    const alice = await connect('alice', ['support']);
    const reason = "ticket C:\\queue\\7, it's urgent";
    expect((await callTool(alice, 'execute', { target: 'test-pg', sql: "UPDATE customers SET name = 'Odd reason' WHERE id = 43", reason })).json).toMatchObject({ status: 'pending_approval' });
    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', 'Odd reason');
    expect(mail.text).toContain(reason);
    await postDecision(mail.link, mail.token, 'deny');
  }, 60_000);

  it('refuses a NUL in the SQL or the reason, which would cut what the listener and the reviewer see', async () => {
    const alice = await connect('alice', ['support']);
    const cut = await callTool(alice, 'execute', { target: 'test-pg', sql: "UPDATE customers SET name = 'Cut here' WHERE id = 44\u0000; DELETE FROM customers" });
    expect(cut).toEqual({ isError: true, text: 'twokey: invalid arguments: sql: no NUL characters (PostgreSQL text cannot hold them)', json: undefined });
    const reason = await callTool(alice, 'execute', { target: 'test-pg', sql: "UPDATE customers SET name = 'Cut reason' WHERE id = 44", reason: 'a\u0000b' });
    expect(reason.text).toBe('twokey: invalid arguments: reason: no NUL characters (PostgreSQL text cannot hold them)');
    expect((await callTool(alice, 'query', { target: 'test-pg', sql: 'SELECT 1\u0000; DELETE FROM customers' })).text).toMatch(/^twokey: invalid arguments: sql: no NUL/);
  }, 60_000);

  it('masks the rows an approved execute returns, in its answer and in request_status', async () => {
    const alice = await connect('alice', ['support']);
    const done = await approvedExecute(alice, "UPDATE customers SET name = 'Returning ssn' WHERE id = 42 RETURNING ssn, email", 'Returning ssn');
    expect(done.json).toMatchObject({ status: 'approved', command: 'UPDATE', row_count: 1 });
    const raw = demoCustomer(42);
    const [ssn, email] = done.json.rows[0] as string[];
    expect(ssn).not.toBe(raw.ssn);
    expect(email).not.toBe(raw.email);
    const status = await callTool(alice, 'request_status', { target: 'test-pg', request_id: done.json.request_id });
    expect(JSON.stringify(status.json)).not.toContain(raw.ssn);
  }, 60_000);

  it('keeps of an approved result at most MAX_TRACKED_RESULT_BYTES for request_status, while the waiting call gets it all', async () => {
    const alice = await connect('alice', ['support']);
    const done = await approvedExecute(alice, "UPDATE customers SET name = 'Big result' WHERE id BETWEEN 50 AND 69 RETURNING repeat('x', 10000)", 'Big result');
    expect(done.json).toMatchObject({ status: 'approved', row_count: 20, truncated: false });
    expect(done.json.rows).toHaveLength(20);
    const status = await callTool(alice, 'request_status', { target: 'test-pg', request_id: done.json.request_id });
    expect(status.json.result).toMatchObject({ row_count: 20, truncated: true });
    expect(status.json.result.rows).toHaveLength(Math.floor(MAX_TRACKED_RESULT_BYTES / 10_000));
  }, 60_000);
});

describe('the twokey mcp bridge', () => {
  it('refuses to send a token over http:// to another host, and names https://', async () => {
    const r = await twokey(['mcp', '--url', 'http://agent.example:6580/mcp'], { TWOKEY_MCP_TOKEN: 'a-token' });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('http://agent.example:6580 would carry your token in clear: use https:// (http:// only to 127.0.0.1 or localhost)');
    expect(r.stderr).not.toContain('a-token');
  });

  it('does not follow a dev.json in the working directory to another machine (a checked-out repository could carry one)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tk-planted-'));
    const planted = { controlPlane: { httpUrl: 'http://127.0.0.1:1', wsUrl: 'ws://127.0.0.1:1' }, issuer: 'http://127.0.0.1:1', outboxDir: dir, pid: 1, targets: { 'demo-pg': { protocol: 'postgres', endpoint: 'db.planted.example:5432' } }, mcp: { url: 'https://planted.example/mcp' } };
    writeFileSync(join(dir, 'dev.json'), JSON.stringify(planted));
    writeFileSync(join(dir, 'script.sql'), 'SELECT 1;');
    try {
      const bridge = await twokey(['mcp', '--data-dir', dir], { TWOKEY_MCP_TOKEN: 'a-token' });
      expect(bridge.code).not.toBe(0);
      expect(bridge.stderr).toContain(`${join(dir, 'dev.json')} names planted.example, not this machine`);
      const exec = await twokey(['exec', '--target', 'demo-pg', '--data-dir', dir, '-f', join(dir, 'script.sql')], { PGPASSWORD: 'a-token' });
      expect(exec.code).not.toBe(0);
      expect(exec.stderr).toContain(`${join(dir, 'dev.json')} names planted.example, not this machine`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 150_000);
});
