import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import pg from 'pg';
import { startPostgresListener } from '../../../agent/postgres/listener';
import { ReadCredentialError } from '../../../agent/postgres/read-credential';
import { cancelRequest, int32, message } from '../../../agent/postgres/protocol/writer';
import { testCertificate } from '../../support/certificate';
import { PG_TEST_POLICY, pgTarget, startPgStack, type PgStack } from '../../support/pg-stack';
import { errorMessageOf, WireClient, wire } from '../../support/pg-wire';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { env: { ...process.env, ...env }, timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

describe('Postgres data plane through the agent', () => {
  let stack: PgStack;
  let alice: string;
  let dave: string;
  let loader: string;
  let conn: (target?: string, user?: string) => string;

  beforeAll(async () => {
    const tls = testCertificate();
    stack = await startPgStack({
      // The loader may also create the temporary table its allowed COPY writes into (the read role writes nothing else).
      policy: PG_TEST_POLICY.replace('actions: { read: allow, write: allow }', 'actions: { read: allow, write: allow, ddl: allow }'),
      extraTargets: (p) => [pgTarget(p, 'test-pg-rw'), pgTarget(p, 'test-pg-tls', { tls })],
    });
    alice = await stack.token('alice', ['support']);
    dave = await stack.token('dave', ['analyst']);
    loader = await stack.token('loader', []);
    conn = (target = 'test-pg', user = 'alice') => {
      const { host, port } = stack.endpoint(target);
      return `host=${host} port=${port} dbname=demo user=${user}`;
    };
  }, 120_000);
  afterAll(() => stack?.stop());

  describe('psql', () => {
    it('runs reads, and refuses a write with 42501 while the session goes on', async () => {
      const r = await run('psql', [conn('test-pg', 'dave'), '-X', '-A', '-t', '-v', 'ON_ERROR_STOP=0',
        '-c', 'SELECT count(*) FROM customers',
        '-c', "UPDATE customers SET name = 'x' WHERE id = 1",
        '-c', 'SELECT name FROM customers WHERE id = 1',
      ], { PGPASSWORD: dave });
      expect(r.stdout.trim().split('\n')).toEqual(['1000', 'Ben Ahmed']);
      expect(r.stderr).toMatch(/ERROR:\s+twokey: write denied by rule analysts/);
    });

    it('names the rule and class when a statement is denied or blocked', async () => {
      const r = await run('psql', [conn(), '-X', '-c', 'DELETE FROM orders WHERE id = 1', '-c', 'DROP TABLE orders', '-c', 'SELECT pg_terminate_backend(1)'], { PGPASSWORD: dave });
      expect(r.stderr).toMatch(/twokey: write denied by rule analysts/);
      expect(r.stderr).toMatch(/twokey: blocked by no-destructive \(drop\)/);
      expect(r.stderr).toMatch(/twokey: blocked by no-kill/);
    });

    it('runs multi-statement strings as a whole, or refuses them as a whole', async () => {
      const ok = await run('psql', [conn(), '-X', '-A', '-t', '-c', 'SELECT 1; SELECT 2'], { PGPASSWORD: alice });
      expect(ok.stdout.trim().split('\n')).toEqual(['1', '2']);
      const mixed = await run('psql', [conn(), '-X', '-A', '-t', '-c', "SELECT 1; UPDATE orders SET status = 'x' WHERE id = 1"], { PGPASSWORD: dave });
      expect(mixed.stderr).toMatch(/write denied/);
      expect(mixed.stdout).toBe('');
    });

    it('serves psql meta-commands that read the catalog', async () => {
      const r = await run('psql', [conn(), '-X', '-c', '\\dt', '-c', '\\d customers'], { PGPASSWORD: alice });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/customers/);
      expect(r.stdout).toMatch(/card_number/);
    });

    it('streams COPY ... TO STDOUT', async () => {
      const r = await run('psql', [conn(), '-X', '-c', '\\copy (SELECT id, status FROM orders ORDER BY id) TO STDOUT WITH CSV'], { PGPASSWORD: alice });
      const lines = r.stdout.trim().split('\n');
      expect(lines).toHaveLength(5000);
      expect(lines[0]).toBe('1,paid');
    });

    it('passes COPY FROM STDIN through when policy allows the write (into a temporary table: the read role writes nothing else)', async () => {
      const r = await run(
        'psql',
        [conn('test-pg-rw', 'loader'), '-X', '-A', '-t', '-c', 'BEGIN READ WRITE', '-c', 'CREATE TEMP TABLE scratch (id int, note text)', '-c', '\\copy scratch FROM STDIN WITH CSV', '-c', "SELECT string_agg(note, ',' ORDER BY id) FROM scratch"],
        { PGPASSWORD: loader },
        '1,one\n2,two\n3,three\n',
      );
      expect(r.stderr).toBe('');
      expect(r.stdout.trim().split('\n').slice(-2)).toEqual(['COPY 3', 'one,two,three']);
    });

    it('drops start-up options that would change the read-only default', async () => {
      const r = await run('psql', [conn(), '-X', '-A', '-t', '-c', 'SHOW default_transaction_read_only'], { PGPASSWORD: alice, PGOPTIONS: '-c default_transaction_read_only=off' });
      expect(r.stdout.trim()).toBe('on');
    });

    it('speaks TLS when the target has a certificate, and refuses sslmode=require otherwise', async () => {
      const secure = await run('psql', [`${conn('test-pg-tls')} sslmode=require`, '-X', '-A', '-t', '-c', 'SELECT 7'], { PGPASSWORD: alice });
      expect(secure.stderr).toBe('');
      expect(secure.stdout.trim()).toBe('7');
      const plain = await run('psql', [`${conn()} sslmode=require`, '-X', '-c', 'SELECT 1'], { PGPASSWORD: alice });
      expect(plain.stderr).toMatch(/server does not support SSL/);
      const { host, port } = stack.endpoint('test-pg-tls');
      const c = new pg.Client({ host, port, user: 'alice', password: alice, database: 'demo', ssl: { rejectUnauthorized: false } });
      await c.connect();
      expect((await c.query('SELECT $1::text AS t', ['over tls'])).rows).toEqual([{ t: 'over tls' }]);
      await c.end();
    });

    it('refuses a bad token like a wrong password', async () => {
      const r = await run('psql', [conn(), '-X', '-c', 'SELECT 1'], { PGPASSWORD: `${alice}x` });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/password authentication failed for user "alice"/);
    });
  });

  describe('node-postgres (extended protocol)', () => {
    const client = async (token: string): Promise<pg.Client> => {
      const { host, port } = stack.endpoint('test-pg');
      const c = new pg.Client({ host, port, user: 'alice', password: token, database: 'demo' });
      await c.connect();
      return c;
    };

    it('runs parameterized and named statements', async () => {
      const c = await client(alice);
      expect((await c.query('SELECT $1::int + 1 AS x', [41])).rows).toEqual([{ x: 42 }]);
      const named = { name: 'by-id', text: 'SELECT email FROM customers WHERE id = $1', values: [3] };
      expect((await c.query(named)).rows).toEqual([{ email: 'dev.ahmed3@example.com' }]);
      expect((await c.query({ ...named, values: [4] })).rows).toEqual([{ email: 'eva.ahmed4@example.com' }]);
      await c.end();
    });

    it('refuses a write with 42501 and keeps the connection usable', async () => {
      const c = await client(dave);
      await expect(c.query('UPDATE orders SET status = $1 WHERE id = $2', ['x', 1])).rejects.toMatchObject({ code: '42501' });
      expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      await c.end();
    });

    it('tracks SQL-level PREPARE and EXECUTE by the prepared class', async () => {
      const c = await client(dave);
      await c.query('PREPARE read_one AS SELECT 1 AS v');
      expect((await c.query('EXECUTE read_one')).rows).toEqual([{ v: 1 }]);
      await expect(c.query("PREPARE wipe AS UPDATE orders SET status = 'x' WHERE id = 1")).rejects.toMatchObject({ code: '42501' });
      await expect(c.query('EXECUTE not_prepared_here')).rejects.toMatchObject({ code: '42501' });
      await c.end();
    });

    it('serves 50 concurrent sessions', async () => {
      const clients = await Promise.all(Array.from({ length: 50 }, () => client(alice)));
      const results = await Promise.all(
        clients.map(async (c, i) => {
          let sum = 0;
          for (let q = 0; q < 10; q++) sum += (await c.query('SELECT $1::int AS v', [i])).rows[0].v as number;
          return sum;
        }),
      );
      expect(results).toEqual(Array.from({ length: 50 }, (_, i) => i * 10));
      await Promise.all(clients.map((c) => c.end()));
    });

    it('cancels a running pg_sleep through the agent', async () => {
      const c = await client(alice);
      const started = Date.now();
      const sleeping = c.query('SELECT pg_sleep(30)');
      await new Promise((r) => setTimeout(r, 300));
      const { host, port } = stack.endpoint('test-pg');
      const key = c as unknown as { processID: number; secretKey: number };
      const s = connect(port, host, () => s.end(cancelRequest(key.processID, key.secretKey)));
      await expect(sleeping).rejects.toMatchObject({ code: '57014' });
      expect(Date.now() - started).toBeLessThan(10_000);
      await c.end();
    });
  });

  describe('wire level', () => {
    const login = async (token = dave): Promise<WireClient> => {
      const { host, port } = stack.endpoint('test-pg');
      return WireClient.login(host, port, token);
    };

    it('keeps pipelined responses in order around a refusal', async () => {
      const c = await login();
      const from = c.received.length;
      c.write(
        wire.parse('', 'SELECT 1'), wire.bind('', ''), wire.execute(''), wire.sync(),
        wire.parse('', 'DELETE FROM orders WHERE id = 1'), wire.bind('', ''), wire.execute(''), wire.sync(),
        wire.query('SELECT 2'),
      );
      const msgs = await c.readyCount(3, from);
      expect(msgs.map((m) => m.code).join('')).toBe('12DCZEZTDCZ');
      expect(errorMessageOf(msgs[5] as never).C).toBe('42501');
      c.close();
    });

    it('injects a refusal inside a batch before its ReadyForQuery', async () => {
      const c = await login();
      const from = c.received.length;
      c.write(wire.parse('', 'SELECT 1'), wire.bind('', ''), wire.execute(''), wire.parse('', 'UPDATE orders SET status = status WHERE id = 1'), wire.bind('', ''), wire.execute(''), wire.sync(), wire.query('SELECT 3'));
      const msgs = await c.readyCount(2, from);
      expect(msgs.map((m) => m.code).join('')).toBe('12DCEZTDCZ');
      c.close();
    });

    it('refuses the fast-path function call protocol', async () => {
      const c = await login();
      const from = c.received.length;
      c.write(wire.functionCall());
      const msgs = await c.readyCount(1, from);
      expect(msgs.map((m) => m.code).join('')).toBe('EZ');
      expect(errorMessageOf(msgs[0] as never).M).toMatch(/function call/);
      c.close();
    });

    it('answers an oversized message with 54000 and disconnects only that client', async () => {
      const other = await login();
      const c = await login();
      const from = c.received.length;
      c.write(Buffer.concat([Buffer.from('Q'), int32(100 * 1024 * 1024)]));
      const msgs = await c.until((m) => m.code === 'E', from);
      expect(errorMessageOf(msgs[msgs.length - 1] as never)).toMatchObject({ S: 'FATAL', C: '54000' });
      await c.untilSlice(() => c.closed, from);
      const before = other.received.length;
      other.write(wire.query('SELECT 42'));
      const reply = await other.readyCount(1, before);
      expect(reply.map((m) => m.code).join('')).toBe('TDCZ');
      other.close();
    });

    it('answers an unknown message type with 08P01', async () => {
      const c = await login();
      const from = c.received.length;
      c.write(message(0x7a, Buffer.from('zzz')));
      const msgs = await c.until((m) => m.code === 'E', from);
      expect(errorMessageOf(msgs[msgs.length - 1] as never).C).toBe('08P01');
      c.close();
    });

    it('rejects a malformed start-up packet', async () => {
      const { host, port } = stack.endpoint('test-pg');
      const c = await WireClient.open(host, port);
      c.write(Buffer.concat([int32(12), int32(1234), int32(0)]));
      const msgs = await c.until((m) => m.code === 'E');
      expect(errorMessageOf(msgs[0] as never).C).toBe('0A000');
      c.close();
    });
  });

  describe('pgbench', () => {
    it('runs the select-only workload in every query mode', async () => {
      const init = await run('pgbench', ['-i', '-s', '1', '-q', stack.pg.adminUrl]);
      expect(init.code).toBe(0);
      for (const mode of ['simple', 'extended', 'prepared']) {
        const r = await run('pgbench', ['-n', '-S', '-M', mode, '-c', '4', '-j', '2', '-t', '50', conn()], { PGPASSWORD: alice });
        expect(r.stderr).not.toMatch(/error/i);
        expect(r.stdout).toMatch(/number of transactions actually processed: 200\/200/);
      }
    });
  });

  it('refuses a superuser as read credential, and says why', async () => {
    const url = new URL(stack.pg.adminUrl);
    const target = {
      name: 'bad',
      protocol: 'postgres' as const,
      listen: { host: '127.0.0.1', port: 0 },
      upstream: { host: '127.0.0.1', port: stack.pg.port, database: 'demo' },
      readCredential: { user: 'postgres', password: decodeURIComponent(url.password) },
      writeCredential: stack.pg.write,
    };
    await expect(startPostgresListener(target, stack.agent.context)).rejects.toThrow(ReadCredentialError);
    await expect(startPostgresListener(target, stack.agent.context)).rejects.toThrow(/is a superuser/);
  });
});
