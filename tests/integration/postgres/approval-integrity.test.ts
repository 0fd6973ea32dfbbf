import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { AgentConfigError } from '../../../agent/config';
import { HELD_BATCH_RULE } from '../../../agent/postgres/approval/approved-request';
import { COPY_IN_REFUSED } from '../../../agent/postgres/approval/run-approved';
import { startPostgresListener } from '../../../agent/postgres/listener';
import { MAX_PASSWORD_MESSAGE_BYTES } from '../../../agent/postgres/session';
import { int32, startupMessage } from '../../../agent/postgres/protocol/writer';
import { demoCustomer } from '../../../local/demo/seed';
import { postDecision, readOutbox, waitForMail } from '../../support/outbox';
import { testCertificate } from '../../support/certificate';
import { pgTarget, startPgStack, type PgStack } from '../../support/pg-stack';
import { errorMessageOf, WireClient, wire, type WireMessage } from '../../support/pg-wire';

const POLICY = `
targets:
  - { name: test-pg, protocol: postgres, agent: pg-agent }
  - { name: test-pg-remote, protocol: postgres, agent: pg-agent }
reviewers:
  dba: [{ subject: bob, email: bob@example.com }]
rules:
  - name: support
    targets: [test-pg, test-pg-remote]
    subjects: { groups: [support] }
    actions: { read: allow, write: { approve: { groups: [dba], min: 1, timeoutSeconds: 900 } } }
`;

const UPDATE = 'UPDATE customers SET name = $1 WHERE id = $2';

/** This machine's address on a network interface: a client connecting to it is not on loopback. */
function outsideAddress(): string {
  const address = Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
  if (!address) throw new Error('this test needs a non-loopback IPv4 address on the machine');
  return address;
}

const errorsIn = (messages: WireMessage[]): Record<string, string>[] => messages.filter((m) => m.code === 'E').map(errorMessageOf);
const noticesIn = (messages: WireMessage[]): string[] => messages.filter((m) => m.code === 'N').map((m) => errorMessageOf(m).M ?? '');

describe('what a reviewer approves is exactly what runs, by exactly whom, once', () => {
  let stack: PgStack;
  let outbox: string;
  let alice: string;

  beforeAll(async () => {
    const tls = testCertificate();
    stack = await startPgStack({
      policy: POLICY,
      prepare: async (admin) => {
        // A table that shadows public.customers for a caller who puts its schema first in search_path.
        await admin.query('CREATE SCHEMA shadow');
        await admin.query('CREATE TABLE shadow.customers (id int PRIMARY KEY, name text)');
        await admin.query("INSERT INTO shadow.customers VALUES (41, 'shadow')");
        await admin.query('GRANT USAGE ON SCHEMA shadow TO twokey_read, twokey_write');
        await admin.query('GRANT SELECT ON shadow.customers TO twokey_read');
        await admin.query('GRANT SELECT, UPDATE ON shadow.customers TO twokey_write');
        // The write role may become a more powerful role, as it often may become the tables' owner.
        await admin.query('CREATE ROLE twokey_owner NOLOGIN');
        await admin.query('GRANT twokey_owner TO twokey_write');
      },
      extraTargets: (p) => [pgTarget(p, 'test-pg-remote', { listen: { host: '0.0.0.0', port: 0 }, tls })],
    });
    outbox = stack.cp.outboxDir;
    alice = await stack.token('alice', ['support']);
  }, 120_000);
  afterAll(() => stack?.stop());

  const login = (params: Record<string, string> = {}): Promise<WireClient> => {
    const { host, port } = stack.endpoint('test-pg');
    return WireClient.login(host, port, alice, params);
  };

  async function nameOf(id: number, schema = 'public'): Promise<string> {
    const c = new pg.Client({ connectionString: stack.pg.adminUrl });
    await c.connect();
    const rows = (await c.query(`SELECT name FROM ${schema}.customers WHERE id = $1`, [id])).rows as { name: string }[];
    await c.end();
    return rows[0]?.name ?? '(none)';
  }

  const mailFiles = (): Set<string> => new Set(readdirSync(outbox));

  /** Approves every new review mail while it runs: whatever reaches a reviewer gets approved. */
  function approveEverything(seen: ReadonlySet<string>): () => void {
    let stopped = false;
    const approved = new Set(seen);
    void (async () => {
      while (!stopped) {
        for (const mail of readOutbox(outbox).filter((m) => !approved.has(m.file))) {
          approved.add(mail.file);
          await postDecision(mail.link, mail.token, 'approve');
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    return () => {
      stopped = true;
    };
  }

  /** Sends one cycle while every review mail is approved: its reply, and the mails it caused. */
  async function sendApprovingEverything(...messages: Buffer[]): Promise<{ reply: WireMessage[]; mails: string[] }> {
    const seen = mailFiles();
    const stop = approveEverything(seen);
    const c = await login();
    const from = c.received.length;
    try {
      c.write(...messages);
      const reply = await c.until((m) => m.code === 'Z', from, 20_000);
      return { reply, mails: [...mailFiles()].filter((f) => !seen.has(f)) };
    } finally {
      stop();
      c.close();
    }
  }

  it('never runs a second Bind that rides along with a held statement, even when a reviewer approves everything', async () => {
    const { reply, mails } = await sendApprovingEverything(wire.parse('', UPDATE), wire.bindWith('', '', ['Ada', '1']), wire.execute(''), wire.bindWith('', '', ['pwned', '2']), wire.execute(''), wire.sync());
    expect(await nameOf(2)).toBe(demoCustomer(2).name);
    expect(await nameOf(1)).toBe(demoCustomer(1).name);
    expect(errorsIn(reply)).toEqual([expect.objectContaining({ C: '0A000', M: HELD_BATCH_RULE })]);
    // Refused before anyone was asked.
    expect(mails).toEqual([]);
  });

  it.each([
    ['a Query riding along', [wire.parse('', UPDATE), wire.bindWith('', '', ['q', '3']), wire.execute(''), wire.query("UPDATE customers SET name = 'q' WHERE id = 3"), wire.sync()], HELD_BATCH_RULE],
    ['a FunctionCall riding along', [wire.parse('', UPDATE), wire.bindWith('', '', ['f', '3']), wire.execute(''), wire.functionCall(), wire.sync()], HELD_BATCH_RULE],
    ['a second portal', [wire.parse('', UPDATE), wire.bindWith('p1', '', ['p', '3']), wire.execute('p1'), wire.sync()], HELD_BATCH_RULE],
    ['a Close', [wire.parse('', UPDATE), wire.bindWith('', '', ['c', '3']), wire.closeStatement('x'), wire.execute(''), wire.sync()], HELD_BATCH_RULE],
    ['a Flush before its Sync', [wire.parse('', UPDATE), wire.bindWith('', '', ['h', '3']), wire.execute(''), wire.flush(), wire.sync()], HELD_BATCH_RULE],
    ['a Describe of the statement', [wire.parse('', UPDATE), wire.describeStatement(''), wire.bindWith('', '', ['d', '3']), wire.execute(''), wire.sync()], HELD_BATCH_RULE],
    ['an Execute with a row limit', [wire.parse('', UPDATE), wire.bindWith('', '', ['r', '3']), wire.execute('', 1), wire.sync()], HELD_BATCH_RULE],
    ['allowed messages before its Parse', [wire.parse('', 'SELECT 1'), wire.bind('', ''), wire.execute(''), wire.parse('', UPDATE), wire.bindWith('', '', ['a', '3']), wire.execute(''), wire.sync()], HELD_BATCH_RULE],
    ['no Bind (prepared for a later batch)', [wire.parse('', UPDATE), wire.sync()], HELD_BATCH_RULE],
    ['binary parameters', [wire.parse('', UPDATE), wire.bindWith('', '', ['b', Buffer.from([0, 0, 0, 3])], { paramFormats: [0, 1] }), wire.execute(''), wire.sync()], 'twokey: a statement that needs approval must send its parameters as text, so that reviewers can read them'],
    ['a named statement (pgbench -M prepared)', [wire.parse('P0_1', UPDATE), wire.bindWith('', 'P0_1', ['n', '3']), wire.execute(''), wire.sync()], expect.stringMatching(/cannot be prepared under a name/)],
  ])('refuses a held batch with %s, changes nothing, and the session goes on', async (_name, batch, message) => {
    const c = await login();
    try {
      const from = c.received.length;
      c.write(...batch);
      const reply = await c.until((m) => m.code === 'Z', from);
      expect(errorsIn(reply)[0]).toEqual(expect.objectContaining({ M: message }));
      const after = c.received.length;
      c.write(wire.query('SELECT name FROM customers WHERE id = 3'));
      const read = await c.until((m) => m.code === 'D', after);
      expect(read.find((m) => m.code === 'D')?.body.toString()).toContain(demoCustomer(3).name);
    } finally {
      c.close();
    }
    expect(await nameOf(3)).toBe(demoCustomer(3).name);
  });

  it.each([
    ["set_config('role', ...), as it refuses SET ROLE", "SELECT set_config('role', 'twokey_owner', false); SELECT current_user"],
    ['a function that administers the server', 'SELECT pg_cancel_backend(pg_backend_pid()), current_user'],
  ])('refuses %s when admin is not granted, before anyone is asked, even when a reviewer approves everything', async (_what, sql) => {
    const { reply, mails } = await sendApprovingEverything(wire.query(sql));
    expect(reply.some((m) => m.code === 'D')).toBe(false);
    expect(errorsIn(reply)).toEqual([expect.objectContaining({ C: '42501', M: expect.stringMatching(/admin/) })]);
    expect(mails).toEqual([]);
  });

  it('ends the session on a Terminate inside a held batch, and runs nothing', async () => {
    const seen = mailFiles();
    const c = await login();
    c.write(wire.parse('', UPDATE), wire.bindWith('', '', ['gone', '4']), wire.execute(''), wire.terminate(), wire.sync());
    await c.until(() => false, 0, 2_000).catch(() => undefined);
    expect(c.closed).toBe(true);
    c.close();
    expect(await nameOf(4)).toBe(demoCustomer(4).name);
    expect([...mailFiles()].filter((f) => !seen.has(f))).toEqual([]);
  });

  it('runs a late approval once, for the same caller and the identical statement and parameters only', async () => {
    const seen = mailFiles();
    const first = await login();
    first.write(wire.parse('', UPDATE), wire.bindWith('', '', ['Late', '31']), wire.describePortal(''), wire.execute(''), wire.sync());
    await first.until((m) => m.code === 'N' && /approval required/.test(errorMessageOf(m).M ?? ''));
    first.close();
    const mail = await waitForMail(outbox, 'bob@example.com', 'SET name = $1 WHERE id = $2', seen);
    expect((await postDecision(mail.link, mail.token, 'approve')).status).toBe(200);
    await new Promise((r) => setTimeout(r, 500));

    const send = async (batch: Buffer[]): Promise<WireMessage[]> => {
      const c = await login();
      const from = c.received.length;
      c.write(...batch);
      const reply = await c.until((m) => m.code === 'Z' || (m.code === 'N' && /approval required/.test(errorMessageOf(m).M ?? '')), from);
      c.close();
      return reply;
    };
    const identical = [wire.parse('', UPDATE), wire.bindWith('', '', ['Late', '31']), wire.describePortal(''), wire.execute(''), wire.sync()];

    // The same first statement with a second one riding along: refused, and the grant is not spent.
    const rider = await send([wire.parse('', UPDATE), wire.bindWith('', '', ['Late', '31']), wire.execute(''), wire.bindWith('', '', ['Late', '32']), wire.execute(''), wire.sync()]);
    expect(errorsIn(rider)[0]).toEqual(expect.objectContaining({ M: HELD_BATCH_RULE }));
    // Other parameters: a new request.
    expect(noticesIn(await send([wire.parse('', UPDATE), wire.bindWith('', '', ['Late', '32']), wire.describePortal(''), wire.execute(''), wire.sync()]))).toEqual([
      expect.stringMatching(/approval required, request/),
    ]);

    const ran = await send(identical);
    expect(noticesIn(ran)).toEqual(['twokey: running once under the approval given earlier for this exact statement']);
    expect(ran.filter((m) => m.code === 'C').map((m) => m.body.toString('utf8', 0, m.body.length - 1))).toEqual(['UPDATE 1']);
    expect(await nameOf(31)).toBe('Late');
    expect(await nameOf(32)).toBe(demoCustomer(32).name);

    // Once only.
    expect(noticesIn(await send(identical))).toEqual([expect.stringMatching(/approval required, request/)]);
  });

  describe('pgbench', () => {
    const pgbench = (mode: string, sql: string): Promise<string> => {
      const { host, port } = stack.endpoint('test-pg');
      const file = join(mkdtempSync(join(tmpdir(), 'tk-bench-')), 'write.sql');
      writeFileSync(file, `${sql}\n`);
      return new Promise((resolve) =>
        execFile('pgbench', ['-h', host, '-p', String(port), '-U', 'alice', '-n', '-t', '1', '-M', mode, '-f', file, 'demo'], { env: { ...process.env, PGPASSWORD: alice }, timeout: 30_000 }, (_e, stdout, stderr) =>
          resolve(stdout + stderr),
        ),
      );
    };

    it('holds a write sent with -M extended until it is approved, then runs it', async () => {
      const seen = mailFiles();
      const running = pgbench('extended', "UPDATE customers SET name = 'Bench Extended' WHERE id = 51");
      const mail = await waitForMail(outbox, 'bob@example.com', 'Bench Extended', seen);
      await postDecision(mail.link, mail.token, 'approve');
      expect(await running).toMatch(/number of transactions actually processed: 1\/1/);
      expect(await nameOf(51)).toBe('Bench Extended');
    });

    it('refuses a write sent with -M prepared (a named statement), saying why', async () => {
      const out = await pgbench('prepared', "UPDATE customers SET name = 'Bench Prepared' WHERE id = 52");
      expect(out).toMatch(/cannot be prepared under a name/);
      expect(await nameOf(52)).toBe(demoCustomer(52).name);
    });
  });

  it("runs an approved write under the write role's settings, not the caller's search_path", async () => {
    const seen = mailFiles();
    const c = await login();
    const from = c.received.length;
    c.write(wire.query('SET search_path = shadow, public'), wire.query("UPDATE customers SET name = 'Reviewed Table' WHERE id = 41"));
    const mail = await waitForMail(outbox, 'bob@example.com', 'Reviewed Table', seen);
    await postDecision(mail.link, mail.token, 'approve');
    const reply = await c.readyCount(2, from);
    c.close();
    expect(errorsIn(reply)).toEqual([]);
    expect(await nameOf(41)).toBe('Reviewed Table');
    expect(await nameOf(41, 'shadow')).toBe('shadow');
  });

  it('refuses a start-up that names another database than the one the target serves', async () => {
    const c = await login({ database: 'postgres' });
    expect(errorsIn(c.received)).toEqual([expect.objectContaining({ S: 'FATAL', C: '3D000', M: 'twokey: this endpoint serves database "demo" only, not "postgres"' })]);
    c.close();
  });

  it('refuses COPY FROM STDIN in an approved statement without reading the caller’s rows', async () => {
    const seen = mailFiles();
    const { host, port } = stack.endpoint('test-pg');
    const done = new Promise<{ stdout: string; stderr: string }>((resolve) => {
      const child = execFile('psql', [`host=${host} port=${port} dbname=demo user=alice`, '-X', '-c', 'COPY customers (id, name, email, ssn, card_number, created_at) FROM STDIN'], { env: { ...process.env, PGPASSWORD: alice }, timeout: 30_000 }, (_e, stdout, stderr) =>
        resolve({ stdout, stderr }),
      );
      child.stdin?.end('99077\tcopied\tcopied@example.com\t000-00-0000\t4000000000000002\t2024-01-01T00:00:00Z\n\\.\n');
    });
    const mail = await waitForMail(outbox, 'bob@example.com', 'COPY customers', seen);
    await postDecision(mail.link, mail.token, 'approve');
    const out = await done;
    expect(out.stderr).toContain(COPY_IN_REFUSED);
    expect(await nameOf(99077)).toBe('(none)');
  });

  describe('the token on the network', () => {
    it('refuses a client on another host that did not ask for TLS, naming sslmode=require', async () => {
      const { port } = stack.endpoint('test-pg-remote');
      const c = await WireClient.open(outsideAddress(), port);
      c.write(startupMessage({ user: 'alice', database: 'demo' }));
      const reply = await c.until((m) => m.code === 'E' || m.code === 'R');
      c.close();
      expect(reply.map((m) => m.code)).toEqual(['E']);
      expect(errorMessageOf(reply[0] as WireMessage)).toEqual(expect.objectContaining({ S: 'FATAL', C: '28000', M: expect.stringContaining('sslmode=require') }));
    });

    it('serves a client on another host over TLS', async () => {
      const { port } = stack.endpoint('test-pg-remote');
      const out = await new Promise<string>((resolve) =>
        execFile('psql', [`host=${outsideAddress()} port=${port} dbname=demo user=alice sslmode=require`, '-X', '-A', '-t', '-c', 'SELECT 6 * 7'], { env: { ...process.env, PGPASSWORD: alice } }, (_e, stdout, stderr) => resolve(stdout + stderr)),
      );
      expect(out.trim()).toBe('42');
    });

    it('will not start a listener other hosts can reach without a TLS certificate', async () => {
      const open = pgTarget(stack.pg, 'open', { listen: { host: '0.0.0.0', port: 0 } });
      await expect(startPostgresListener(open, stack.agent.context)).rejects.toThrow(AgentConfigError);
      const anyDatabase = pgTarget(stack.pg, 'any-database');
      await expect(startPostgresListener({ ...anyDatabase, upstream: { ...anyDatabase.upstream, database: undefined } }, stack.agent.context)).rejects.toThrow(/upstream.database is required/);
    });

    it('ends a session whose password message is larger than any token, before reading it', async () => {
      const { host, port } = stack.endpoint('test-pg');
      const c = await WireClient.open(host, port);
      c.write(startupMessage({ user: 'alice', database: 'demo' }));
      await c.until((m) => m.code === 'R');
      // The header claims 1 MB; only a little of it is sent.
      c.write(Buffer.from('p'), int32(1024 * 1024), Buffer.alloc(100, 0x61));
      const reply = await c.until((m) => m.code === 'E');
      c.close();
      expect(errorsIn(reply)).toEqual([expect.objectContaining({ S: 'FATAL', C: '54000', M: `twokey: message of ${1024 * 1024 + 1} bytes exceeds the limit of ${MAX_PASSWORD_MESSAGE_BYTES} bytes` })]);
    });
  });
});
