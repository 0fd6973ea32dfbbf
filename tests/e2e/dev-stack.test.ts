import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { waitFor } from '../support/control-plane';
import { execFile } from 'node:child_process';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { startDev, TWOKEY_BIN, twokey, type DevProcess } from '../support/cli';
import { KUBECTL } from '../support/kubectl';
import { postDecision, readOutbox, waitForMail } from '../support/outbox';
import { demoCustomer } from '../../local/demo/seed';

function portOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, host);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('twokey dev (npm start) end to end', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tk-dev-'));
  let dev: DevProcess;

  beforeAll(async () => {
    dev = await startDev(dataDir, ['--fresh']);
  }, 120_000);
  afterAll(async () => {
    await dev?.stop();
  });

  it('shows the demo agent connected to an admin within 10 s', async () => {
    const started = Date.now();
    const token = (await twokey(['token', '--user', 'root', '--audience', 'api', '--data-dir', dataDir])).stdout.trim();
    const agent = await waitFor(async () => {
      const res = await twokey(['agents', 'list', '--json', '--data-dir', dataDir], { TWOKEY_TOKEN: token });
      expect(res.code).toBe(0);
      const agents = (JSON.parse(res.stdout) as { agents: { name: string; connected: boolean; targets: string[] }[] }).agents;
      return agents.find((a) => a.name === 'demo-agent' && a.connected);
    }, 10_000, 'demo agent connected');
    expect(agent.targets).toEqual(['demo-pg', 'demo-k8s']);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('serves kubectl through the kubeconfig twokey kubeconfig writes (exec plugin, pinned CA), Secrets masked', async () => {
    const kubeconfig = join(dataDir, 'kubeconfig');
    expect((await twokey(['kubeconfig', '--target', 'demo-k8s', '--user', 'alice', '--data-dir', dataDir, '--kubeconfig', kubeconfig])).code).toBe(0);
    const run = (args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(KUBECTL, args, { env: { ...process.env, KUBECONFIG: kubeconfig, HOME: dataDir } }, (error, stdout, stderr) => resolve({ code: error ? 1 : 0, stdout, stderr }));
      });
    const pods = await run(['get', 'pods']);
    expect(pods.stderr).toBe('');
    expect(pods.stdout).toMatch(/web-1\s+1\/1\s+Running/);
    const password = await run(['get', 'secret', 'db-credentials', '-o', 'jsonpath={.data.password}']);
    expect(Buffer.from(password.stdout, 'base64').toString('utf8')).toBe('****');
  });

  it('serves MCP to an AI client through `twokey mcp`, found from dev.json, masked as the demo policy says', async () => {
    const token = (await twokey(['token', '--user', 'alice', '--data-dir', dataDir])).stdout.trim();
    const client = new Client({ name: 'dev-test', version: '1.0.0' });
    await client.connect(new StdioClientTransport({ command: process.execPath, args: [TWOKEY_BIN, 'mcp', '--target', 'demo-pg', '--data-dir', dataDir], env: { ...(process.env as Record<string, string>), TWOKEY_MCP_TOKEN: token }, stderr: 'pipe' }));
    try {
      expect(dev.output()).toContain(`MCP            ${dev.info.mcp?.url ?? '?'}`);
      const r = await client.callTool({ name: 'query', arguments: { target: 'demo-pg', sql: 'SELECT ssn FROM customers WHERE id = 1' } });
      const rows = (JSON.parse((r.content as { text: string }[])[0]?.text ?? '{}') as { rows: string[][] }).rows;
      expect(rows).toHaveLength(1);
      expect(rows[0]?.[0]).not.toBe(demoCustomer(1).ssn);
    } finally {
      await client.close();
    }
  });

  it('refuses agents list to a non-admin and without a token', async () => {
    const alice = (await twokey(['token', '--user', 'alice', '--audience', 'api', '--data-dir', dataDir])).stdout.trim();
    const forbidden = await twokey(['agents', 'list', '--data-dir', dataDir], { TWOKEY_TOKEN: alice });
    expect(forbidden.code).toBe(1);
    expect(forbidden.stderr).toMatch(/HTTP 403/);
    const anonymous = await twokey(['agents', 'list', '--data-dir', dataDir], { TWOKEY_TOKEN: '' });
    expect(anonymous.stderr).toMatch(/no token/);
  });

  it("keeps the planes' tokens apart: a psql password cannot call the API, an API token is no psql password", async () => {
    const [host, port] = (dev.info.targets['demo-pg']?.endpoint ?? '').split(':');
    const rootData = (await twokey(['token', '--user', 'root', '--data-dir', dataDir])).stdout.trim();
    const rootApi = (await twokey(['token', '--user', 'root', '--audience', 'api', '--data-dir', dataDir])).stdout.trim();
    const refused = await twokey(['agents', 'list', '--data-dir', dataDir], { TWOKEY_TOKEN: rootData });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/HTTP 401.*--audience api/);
    expect((await twokey(['agents', 'list', '--data-dir', dataDir], { TWOKEY_TOKEN: rootApi })).code).toBe(0);

    const asPassword = new pg.Client({ host, port: Number(port), database: 'demo', user: 'root', password: rootApi });
    await expect(asPassword.connect()).rejects.toThrow(/password authentication failed/);
    const alice = (await twokey(['token', '--user', 'alice', '--data-dir', dataDir])).stdout.trim();
    const ok = new pg.Client({ host, port: Number(port), database: 'demo', user: 'alice', password: alice });
    await ok.connect();
    expect((await ok.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await ok.end();
    const unknown = await twokey(['token', '--user', 'root', '--audience', 'admin', '--data-dir', dataDir]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/--audience takes data or api/);
  });

  it('serves the demo database with the deterministic data and a read-only role', async () => {
    const target = dev.info.targets['demo-pg'];
    expect(target?.adminUrl).toBeDefined();
    const admin = new pg.Client({ connectionString: target?.adminUrl });
    await admin.connect();
    const counts = await admin.query('SELECT (SELECT count(*) FROM customers)::int AS c, (SELECT count(*) FROM orders)::int AS o');
    expect(counts.rows[0]).toEqual({ c: 1000, o: 5000 });
    const roles = await admin.query("SELECT rolname, rolsuper, rolcreaterole FROM pg_roles WHERE rolname LIKE 'twokey_%' ORDER BY 1");
    expect(roles.rows).toEqual([
      { rolname: 'twokey_read', rolsuper: false, rolcreaterole: false },
      { rolname: 'twokey_write', rolsuper: false, rolcreaterole: false },
    ]);
    await admin.end();
  });

  it('stores a new policy through the CLI and reports a bad one with its line', async () => {
    const root = (await twokey(['token', '--user', 'root', '--audience', 'api', '--data-dir', dataDir])).stdout.trim();
    const current = await twokey(['policies', 'get', '--json', '--data-dir', dataDir], { TWOKEY_TOKEN: root });
    expect(JSON.parse(current.stdout).version).toBe(1);
    const badFile = join(dataDir, 'bad.yaml');
    writeFileSync(badFile, 'targets:\n  - { name: x, protocol: ftp, agent: a }\n');
    const bad = await twokey(['policies', 'put', badFile, '--data-dir', dataDir], { TWOKEY_TOKEN: root });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/targets\.0\.protocol/);
    expect(bad.stderr).toMatch(/"line": 2/);
  });

  it('puts a policy change through the CLI: submitted (exit 5), stored once a second admin approves, or at once as an emergency', async () => {
    const root = (await twokey(['token', '--user', 'root', '--audience', 'api', '--data-dir', dataDir])).stdout.trim();
    const asRoot = { TWOKEY_TOKEN: root };
    const current = JSON.parse((await twokey(['policies', 'get', '--json', '--data-dir', dataDir], asRoot)).stdout) as { version: number; source: string };
    const changed = (n: number) => {
      const file = join(dataDir, `change-${n}.yaml`);
      writeFileSync(file, `${current.source}# change ${n}\n`);
      return file;
    };

    const submitted = await twokey(['policies', 'put', changed(1), '--reason', 'tidy up', '--data-dir', dataDir], asRoot);

    expect(submitted.code).toBe(5);
    const requestId = /request ([0-9a-f-]{36})/.exec(submitted.stdout)?.[1] ?? '';
    const mail = await waitForMail(dev.info.outboxDir, 'grace@example.com', requestId);
    expect(JSON.parse((await twokey(['policies', 'get', '--json', '--data-dir', dataDir], asRoot)).stdout).version).toBe(current.version);
    expect((await postDecision(mail.link, mail.token, 'approve')).status).toBe(200);
    await waitFor(async () => (JSON.parse((await twokey(['policies', 'get', '--json', '--data-dir', dataDir], asRoot)).stdout).version === current.version + 1 ? true : undefined), 10_000, 'approved version');

    const decideWaiting = async (n: number, decision: 'approve' | 'deny') => {
      const seen = new Set(readOutbox(dev.info.outboxDir).map((m) => m.file));
      const waiting = twokey(['policies', 'put', changed(n), '--wait', '--data-dir', dataDir], asRoot);
      const asked = await waitForMail(dev.info.outboxDir, 'grace@example.com', `change ${n}`, seen);
      await postDecision(asked.link, asked.token, decision, decision === 'deny' ? 'not today' : '');
      return waiting;
    };
    expect((await twokey(['policies', 'get', '--data-dir', dataDir], asRoot)).stdout.split('\n')[0]).toMatch(/^# version \d+, \S+ by root, approved by grace@example\.com$/);
    const approved = await decideWaiting(2, 'approve');
    expect(approved.code).toBe(0);
    expect(approved.stdout).toMatch(new RegExp(`approved by grace@example.com; policy version ${current.version + 2} stored`));
    const denied = await decideWaiting(3, 'deny');
    expect(denied.code).toBe(4);
    expect(denied.stderr).toMatch(/denied by grace@example.com \(not today\); the policy is unchanged/);

    const emergency = await twokey(['policies', 'put', changed(4), '--emergency', '--reason', 'INC-1 hotfix', '--data-dir', dataDir], asRoot);
    expect(emergency.code).toBe(0);
    expect(emergency.stdout).toContain(`policy version ${current.version + 3} stored (emergency change`);
    expect((await twokey(['policies', 'get', '--data-dir', dataDir], asRoot)).stdout.split('\n')[0]).toMatch(/, EMERGENCY change without approval: INC-1 hotfix$/);
    const told = await waitFor(() => {
      const notices = readOutbox(dev.info.outboxDir).filter((m) => m.subject.includes('EMERGENCY'));
      return notices.length >= 3 ? notices : undefined;
    }, 5_000, 'emergency notices');
    expect(told.map((m) => m.to).sort()).toEqual(['erin@example.com', 'grace@example.com', 'root@example.com']);
    const listed = await twokey(['approvals', 'list', '--data-dir', dataDir], asRoot);
    expect(listed.stdout).toMatch(new RegExp(`emergency +policy .*policy version ${current.version + 2} → ${current.version + 3} \\(\\+1 -1 lines\\)`));
  });

  it('walks through the README: alice reads, her UPDATE waits for bob, his link runs it, dave may not write', async () => {
    const [host, port] = (dev.info.targets['demo-pg']?.endpoint ?? '').split(':');
    const alice = (await twokey(['token', '--user', 'alice', '--data-dir', dataDir])).stdout.trim();
    const dave = (await twokey(['token', '--user', 'dave', '--data-dir', dataDir])).stdout.trim();
    const psql = (token: string, ...commands: string[]) =>
      new Promise<{ stdout: string; stderr: string }>((resolve) => {
        const args = [`host=${host} port=${port} dbname=demo user=me`, '-X', '-A', '-t', ...commands.flatMap((c) => ['-c', c])];
        execFile('psql', args, { env: { ...process.env, PGPASSWORD: token } }, (_e, stdout, stderr) => resolve({ stdout, stderr }));
      });
    expect((await psql(alice, 'SELECT name FROM customers WHERE id = 2')).stdout.trim()).toBe('Chloe Ahmed');

    const held = psql(alice, "UPDATE customers SET name = 'Ada Lovelace' WHERE id = 2");
    const mail = await waitForMail(dev.info.outboxDir, 'bob@example.com', 'Ada Lovelace');
    // The console line follows the .eml file through the child's stderr pipe: wait for it.
    await waitFor(() => dev.output().includes('mail to bob@example.com') || undefined, 5_000, 'console mail line');
    expect((await fetch(mail.link)).status).toBe(200);
    expect((await postDecision(mail.link, mail.token, 'approve')).status).toBe(200);
    const out = await held;
    expect(out.stderr).toMatch(/twokey: approval required, request .* sent to dba/);
    expect(out.stdout.trim()).toBe('UPDATE 1');
    expect((await psql(alice, 'SELECT name FROM customers WHERE id = 2')).stdout.trim()).toBe('Ada Lovelace');

    const denied = await psql(dave, "UPDATE customers SET name = 'x' WHERE id = 2");
    expect(denied.stderr).toMatch(/twokey: write denied by rule analysts-read-only/);

    // The masking section: partial for alice, full and strict for dave, views included.
    const c1 = demoCustomer(1);
    expect((await psql(alice, 'SELECT email, ssn FROM customers WHERE id = 1')).stdout.trim()).toBe(`****${c1.email.slice(-4)}|****${c1.ssn.slice(-4)}`);
    expect((await psql(dave, 'SELECT * FROM customers WHERE id = 1')).stdout.trim()).toMatch(/^1\|Ben Ahmed\|\*\*\*\*\|\*\*\*\*\|\*\*\*\*\|/);
    expect((await psql(dave, 'SELECT email AS e FROM customer_contacts LIMIT 1')).stdout.trim()).toBe('****');
    const inferred = await psql(dave, "SELECT id FROM customers WHERE ssn LIKE '1%'");
    expect(inferred.stderr).toMatch(/ERROR: {2}twokey: column public\.customers\.ssn is masked \(strict\) and cannot be used in WHERE/);
  });

  it('stops every child process on SIGTERM', async () => {
    const pgUrl = new URL(dev.info.targets['demo-pg']?.adminUrl ?? '');
    const http = new URL(dev.info.controlPlane.httpUrl);
    expect(await portOpen(pgUrl.hostname, Number(pgUrl.port))).toBe(true);
    expect(await dev.stop()).toBe(0);
    expect(await portOpen(pgUrl.hostname, Number(pgUrl.port))).toBe(false);
    expect(await portOpen(http.hostname, Number(http.port))).toBe(false);
  });
});
