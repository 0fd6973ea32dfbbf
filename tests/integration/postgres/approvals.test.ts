import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { signLinkToken } from '../../../core/approval/link-token';
import { principalKey } from '../../../core/identity/identity';
import { demoCustomer } from '../../../local/demo/seed';
import { getRuntime } from '../../../lambdas/shared/runtime';
import { waitFor } from '../../support/control-plane';
import { twokey } from '../../support/cli';
import { postDecision, readOutbox, waitForMail } from '../../support/outbox';
import { startPgStack, type PgStack } from '../../support/pg-stack';

const POLICY = `
targets:
  - { name: test-pg, protocol: postgres, agent: pg-agent }
reviewers:
  dba: [{ subject: bob, email: bob@example.com }, { subject: carol, email: carol@example.com }]
  security: [{ subject: sam, email: sam@example.com }, { subject: sue, email: sue@example.com }]
  # Opaque subjects, as Okta and Entra issue them: nothing in them looks like the address.
  ops: [{ subject: 00u-olga, email: olga@example.com }, { subject: 00u-omar, email: omar@example.com }]
rules:
  - name: support
    targets: [test-pg]
    subjects: { groups: [support] }
    actions: { read: allow, write: { approve: { groups: [dba], min: 1, timeoutSeconds: 900 } } }
  - name: dba-changes
    targets: [test-pg]
    subjects: { groups: [dba] }
    actions: { read: allow, write: { approve: { groups: [dba], min: 1, timeoutSeconds: 900 } } }
  - name: ops-changes
    targets: [test-pg]
    subjects: { groups: [ops] }
    actions: { read: allow, write: { approve: { groups: [ops], min: 1, timeoutSeconds: 900 } } }
  - name: two-keys
    targets: [test-pg]
    subjects: { users: [mallory] }
    actions: { read: allow, write: { approve: { groups: [security], min: 2, timeoutSeconds: 900 } } }
  - name: quick
    targets: [test-pg]
    subjects: { users: [quinn] }
    actions: { read: allow, write: { approve: { groups: [dba], min: 1, timeoutSeconds: 10 } } }
  - name: with-reason
    targets: [test-pg]
    subjects: { users: [rita] }
    actions: { read: allow, write: { approve: { groups: [dba], min: 1, requireReason: true } } }
  - name: schema-changes-by-security
    targets: [test-pg]
    subjects: { users: [wendy] }
    actions:
      read: allow
      write: { approve: { groups: [dba], min: 1, timeoutSeconds: 900 } }
      ddl: { approve: { groups: [security], min: 2, timeoutSeconds: 900 } }
`;

interface Psql {
  child: ChildProcess;
  done: Promise<{ stdout: string; stderr: string }>;
}

describe('approvals for Postgres writes (hold-and-run)', () => {
  let stack: PgStack;
  let outbox: string;

  beforeAll(async () => {
    stack = await startPgStack({ policy: POLICY });
    outbox = stack.cp.outboxDir;
  }, 120_000);
  afterAll(() => stack?.stop());

  const conninfo = (): string => {
    const { host, port } = stack.endpoint('test-pg');
    return `host=${host} port=${port} dbname=demo user=someone`;
  };

  async function psql(user: string | { user: string; email: null }, groups: string[], ...commands: string[]): Promise<Psql> {
    const token = typeof user === 'string' ? await stack.token(user, groups) : await stack.token(user.user, groups, { email: user.email });
    let child!: ChildProcess;
    const done = new Promise<{ stdout: string; stderr: string }>((resolve) => {
      child = execFile('psql', [conninfo(), '-X', ...commands.flatMap((c) => ['-c', c])], { env: { ...process.env, PGPASSWORD: token }, timeout: 60_000 }, (_e, stdout, stderr) =>
        resolve({ stdout, stderr }),
      );
    });
    return { child, done };
  }

  async function adminQuery(sql: string): Promise<unknown[]> {
    const c = new pg.Client({ connectionString: stack.pg.adminUrl });
    await c.connect();
    const rows = (await c.query(sql)).rows;
    await c.end();
    return rows;
  }

  it('holds an UPDATE until bob approves it from the link, then runs it once on the write credential', async () => {
    const run = await psql('alice', ['support'], "UPDATE customers SET name = 'Approved Once' WHERE id = 11");
    const mail = await waitForMail(outbox, 'bob@example.com', 'Approved Once');
    const page = await fetch(mail.link);
    const html = await page.text();
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(html).toContain('UPDATE customers SET name = &#39;Approved Once&#39; WHERE id = 11');
    expect(html).toMatch(/about 1 row\(s\) \(planner estimate\)/);
    expect(html).toContain('<form method="post">');
    // GET changed nothing: still held, nothing written.
    expect(await adminQuery('SELECT name FROM customers WHERE id = 11')).toEqual([{ name: demoCustomer(11).name }]);

    const decided = await postDecision(mail.link, mail.token, 'approve', 'ok');
    expect(decided.status).toBe(200);
    const out = await run.done;
    expect(out.stdout).toMatch(/UPDATE 1/);
    expect(out.stderr).toMatch(/NOTICE:\s+twokey: approval required, request [0-9a-f-]{36}, sent to dba, waiting up to 900s/);
    expect(out.stderr).toMatch(/approved by bob@example.com/);
    expect(await adminQuery('SELECT name FROM customers WHERE id = 11')).toEqual([{ name: 'Approved Once' }]);

    // The same link again: already decided, nothing changes.
    const replay = await postDecision(mail.link, mail.token, 'deny');
    expect(replay.status).toBe(409);
    expect((await fetch(mail.link)).status).toBe(409);
  });

  it('refuses the write when carol denies it, naming her and her comment', async () => {
    const run = await psql('alice', ['support'], "UPDATE customers SET name = 'Denied' WHERE id = 12");
    const mail = await waitForMail(outbox, 'carol@example.com', "'Denied'");
    expect((await postDecision(mail.link, mail.token, 'deny', 'not during the freeze')).status).toBe(200);
    const out = await run.done;
    expect(out.stderr).toMatch(/ERROR:\s+twokey: request [0-9a-f-]+ denied by carol@example.com: not during the freeze/);
    expect(await adminQuery('SELECT name FROM customers WHERE id = 12')).toEqual([{ name: demoCustomer(12).name }]);
  });

  /** Signs, with the deployment's real key, a link to the mail's request for `subject`, and approves with it. */
  async function approveWithLinkFor(mail: { link: string; token: string }, subject: string): Promise<number> {
    const key = await getRuntime('test').deps.linkKey();
    const requestId = JSON.parse(Buffer.from(mail.token.split('.')[0] ?? '', 'base64url').toString()).requestId as string;
    const link = signLinkToken({ requestId, reviewer: principalKey({ issuer: stack.cp.issuer, subject }), exp: Math.floor(Date.now() / 1000) + 600, nonce: subject }, key);
    return (await postDecision(mail.link, link, 'approve')).status;
  }

  it('never lets a requester approve their own write', async () => {
    const seen = new Set(readOutbox(outbox).map((m) => m.file));
    const run = await psql('bob', ['dba'], "UPDATE customers SET name = 'Self' WHERE id = 13");
    const mail = await waitForMail(outbox, 'carol@example.com', "'Self'", seen);
    expect(readOutbox(outbox).filter((m) => !seen.has(m.file)).map((m) => m.to)).toEqual(['carol@example.com']);
    // A link bob makes for himself with the real key is still refused: he is not a reviewer of his own request.
    expect(await approveWithLinkFor(mail, 'bob')).toBe(403);
    expect((await postDecision(mail.link, mail.token, 'deny')).status).toBe(200);
    expect((await run.done).stderr).toMatch(/denied by carol@example.com/);
  });

  it('never mails a reviewer their own request when their token has an opaque subject and no email claim', async () => {
    const seen = new Set(readOutbox(outbox).map((m) => m.file));
    const run = await psql({ user: '00u-olga', email: null }, ['ops'], "UPDATE customers SET name = 'Opaque' WHERE id = 25");
    const mail = await waitForMail(outbox, 'omar@example.com', "'Opaque'", seen);
    await new Promise((r) => setTimeout(r, 200));
    expect(readOutbox(outbox).filter((m) => !seen.has(m.file)).map((m) => m.to)).toEqual(['omar@example.com']);
    const page = await (await fetch(mail.link)).text();
    expect(page).toContain(`subject <code>00u-olga</code> at <code>${stack.cp.issuer}</code>`);
    expect(page).toContain('verified email: <em>none</em>');
    expect(await approveWithLinkFor(mail, '00u-olga')).toBe(403);
    expect((await postDecision(mail.link, mail.token, 'deny')).status).toBe(200);
    expect((await run.done).stderr).toMatch(/denied by omar@example.com/);
  });

  it('refuses a write from an approver-group member the directory does not know, and mails nobody', async () => {
    const seen = new Set(readOutbox(outbox).map((m) => m.file));
    const out = await (await psql({ user: 'olga-alias', email: null }, ['ops'], "UPDATE customers SET name = 'Alias' WHERE id = 26")).done;
    expect(out.stderr).toMatch(/twokey: approval required but unavailable: .*you are in approver group ops, but the reviewers directory has no entry for subject olga-alias/);
    await new Promise((r) => setTimeout(r, 200));
    expect(readOutbox(outbox).filter((m) => !seen.has(m.file))).toEqual([]);
    expect(await adminQuery('SELECT name FROM customers WHERE id = 26')).toEqual([{ name: demoCustomer(26).name }]);
  });

  it('needs both reviewers under a 2-of-2 rule', async () => {
    const run = await psql('mallory', [], "UPDATE customers SET name = 'Two Keys' WHERE id = 14");
    const sam = await waitForMail(outbox, 'sam@example.com', 'Two Keys');
    const sue = await waitForMail(outbox, 'sue@example.com', 'Two Keys');
    const first = await postDecision(sam.link, sam.token, 'approve');
    expect(first.html).toMatch(/1 of 2 approvals/);
    await new Promise((r) => setTimeout(r, 300));
    expect(await adminQuery('SELECT name FROM customers WHERE id = 14')).toEqual([{ name: demoCustomer(14).name }]);
    await postDecision(sue.link, sue.token, 'approve');
    expect((await run.done).stdout).toMatch(/UPDATE 1/);
    expect(await adminQuery('SELECT name FROM customers WHERE id = 14')).toEqual([{ name: 'Two Keys' }]);
  });

  it('refuses forged, expired and wrong-reviewer links without changing anything', async () => {
    const run = await psql('alice', ['support'], "UPDATE customers SET name = 'Links' WHERE id = 15");
    const mail = await waitForMail(outbox, 'bob@example.com', "'Links'");
    const [payload, signature] = mail.token.split('.');
    const forged = `${payload}.${(signature ?? '').slice(0, -2)}AA`;
    expect((await postDecision(mail.link, forged, 'approve')).status).toBe(403);
    const claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString()) as { requestId: string };
    const key = await getRuntime('test').deps.linkKey();
    const expired = signLinkToken({ requestId: claims.requestId, reviewer: principalKey({ issuer: stack.cp.issuer, subject: 'bob' }), exp: Math.floor(Date.now() / 1000) - 1, nonce: 'y' }, key);
    const expiredPost = await postDecision(mail.link, expired, 'approve');
    expect(expiredPost.status).toBe(410);
    expect(expiredPost.html).toMatch(/expired/);
    const stranger = signLinkToken({ requestId: claims.requestId, reviewer: principalKey({ issuer: stack.cp.issuer, subject: 'eve' }), exp: Math.floor(Date.now() / 1000) + 600, nonce: 'z' }, key);
    expect((await postDecision(mail.link, stranger, 'approve')).status).toBe(403);
    expect(await adminQuery('SELECT name FROM customers WHERE id = 15')).toEqual([{ name: demoCustomer(15).name }]);
    await postDecision(mail.link, mail.token, 'deny');
    await run.done;
  });

  it('renders statement text inert on the review page', async () => {
    const run = await psql('alice', ['support'], "UPDATE customers SET name = '<script>alert(1)</script><img src=x onerror=alert(2)>' WHERE id = 16");
    const mail = await waitForMail(outbox, 'bob@example.com', 'alert(1)');
    const html = await (await fetch(mail.link)).text();
    expect(html).not.toContain('<script>alert');
    expect(html).not.toContain('<img src=x');
    expect(html).toContain('&#60;script&#62;alert(1)&#60;/script&#62;');
    await postDecision(mail.link, mail.token, 'deny');
    await run.done;
  });

  it('shows extended-protocol parameters to the reviewer and runs exactly them', async () => {
    const { host, port } = stack.endpoint('test-pg');
    const client = new pg.Client({ host, port, user: 'alice', password: await stack.token('alice', ['support']), database: 'demo' });
    await client.connect();
    const pending = client.query('UPDATE customers SET name = $1 WHERE id = $2', ['From Params', 17]);
    const mail = await waitForMail(outbox, 'bob@example.com', 'SET name = $1 WHERE id = $2');
    const html = await (await fetch(mail.link)).text();
    expect(html).toContain('<li><code class="param">&#39;From Params&#39;</code></li><li><code class="param">&#39;17&#39;</code></li>');
    await postDecision(mail.link, mail.token, 'approve');
    expect((await pending).rowCount).toBe(1);
    expect((await client.query('SELECT name FROM customers WHERE id = 17')).rows).toEqual([{ name: 'From Params' }]);
    await client.end();
  });

  it('shows a NULL parameter apart from the text NULL, and a value with its spaces, in the page and the mail', async () => {
    const { host, port } = stack.endpoint('test-pg');
    const client = new pg.Client({ host, port, user: 'alice', password: await stack.token('alice', ['support']), database: 'demo' });
    await client.connect();
    // With $1 NULL and $2 the text 'NULL', customer 20 is renamed to the four letters N, U, L, L.
    const pending = client.query('UPDATE customers SET name = coalesce($1, $2) WHERE id = 20 AND name <> $3', [null, 'NULL', ' two  spaces ']).catch((e: Error) => e);
    const mail = await waitForMail(outbox, 'bob@example.com', 'coalesce($1, $2) WHERE id = 20');
    const html = await (await fetch(mail.link)).text();
    const items = [...html.matchAll(/<li>(.*?)<\/li>/g)].map((m) => m[1]);
    expect(items).toHaveLength(3);
    expect(items[0]).not.toEqual(items[1]);
    expect(items[1]).toContain('&#39;NULL&#39;');
    expect(items[2]).toContain('&#39; two  spaces &#39;');
    expect(mail.text).toMatch(/\$1 = NULL\r?\n/);
    expect(mail.text).toContain("$2 = 'NULL'");
    expect(mail.text).toContain("$3 = ' two  spaces '");
    await postDecision(mail.link, mail.token, 'deny');
    expect(await pending).toBeInstanceOf(Error);
    await client.end();
  });

  it('keeps a request open after the caller leaves, and then runs the identical statement once', async () => {
    const sql = "UPDATE customers SET name = 'Later' WHERE id = 18";
    const first = await psql('alice', ['support'], sql);
    const mail = await waitForMail(outbox, 'bob@example.com', "'Later'");
    first.child.kill('SIGKILL');
    await first.done;
    await postDecision(mail.link, mail.token, 'approve');
    await new Promise((r) => setTimeout(r, 500));
    expect(await adminQuery('SELECT name FROM customers WHERE id = 18')).toEqual([{ name: demoCustomer(18).name }]);
    const again = await (await psql('alice', ['support'], sql)).done;
    expect(again.stdout).toMatch(/UPDATE 1/);
    expect(again.stderr).toMatch(/running once under the approval given earlier/);
    expect(await adminQuery('SELECT name FROM customers WHERE id = 18')).toEqual([{ name: 'Later' }]);
    // Once only: the third time asks again.
    const seen = new Set(readOutbox(outbox).map((m) => m.file));
    const third = await psql('alice', ['support'], sql);
    const mail3 = await waitForMail(outbox, 'bob@example.com', "'Later'", seen);
    await postDecision(mail3.link, mail3.token, 'deny');
    expect((await third.done).stderr).toMatch(/denied/);
  });

  it('points a write inside a transaction block to twokey exec', async () => {
    const out = await (await psql('alice', ['support'], 'BEGIN', "UPDATE customers SET name = 'Tx' WHERE id = 19")).done;
    expect(out.stderr).toMatch(/twokey: a write inside a transaction block cannot wait for approval/);
    expect(out.stderr).toMatch(/twokey exec/);
  });

  it('asks for a reason when the rule requires one, and shows it to the reviewer', async () => {
    const without = await (await psql('rita', [], "UPDATE customers SET name = 'Reason' WHERE id = 20")).done;
    expect(without.stderr).toMatch(/needs a reason/);
    const run = await psql('rita', [], "SET twokey.reason = 'ticket OPS-42'", "UPDATE customers SET name = 'Reason' WHERE id = 20");
    const mail = await waitForMail(outbox, 'bob@example.com', "'Reason'");
    expect(await (await fetch(mail.link)).text()).toContain('ticket OPS-42');
    await postDecision(mail.link, mail.token, 'approve');
    expect((await run.done).stdout).toMatch(/UPDATE 1/);
  });

  describe('CLI', () => {
    const twokeyCli = async (args: string[], token: string): Promise<{ code: number; stdout: string; stderr: string }> => {
      const { host, port } = stack.endpoint('test-pg');
      return twokey([...args, '--host', host, '--port', String(port), '--database', 'demo'], { PGPASSWORD: token });
    };

    it('twokey exec submits a script, and runs it as one transaction once approved', async () => {
      const file = join(mkdtempSync(join(tmpdir(), 'tk-exec-')), 'fix.sql');
      writeFileSync(file, "UPDATE orders SET status = 'exec-1' WHERE id = 101;\nUPDATE orders SET status = 'exec-2' WHERE id = 102;\nSELECT id, status FROM orders WHERE id IN (101, 102) ORDER BY id;\n");
      const alice = await stack.token('alice', ['support']);
      const submitted = await twokeyCli(['exec', '--target', 'test-pg', '-f', file, '--reason', 'OPS-7'], alice);
      expect(submitted.code).toBe(5);
      expect(submitted.stderr).toMatch(/submitted for approval as request/);
      const mail = await waitForMail(outbox, 'bob@example.com', 'exec-2');
      expect(mail.text).toContain('OPS-7');
      await postDecision(mail.link, mail.token, 'approve');
      await new Promise((r) => setTimeout(r, 300));
      const ran = await twokeyCli(['exec', '--target', 'test-pg', '-f', file], alice);
      expect(ran.code).toBe(0);
      expect(ran.stdout).toContain('101|exec-1\n102|exec-2');

      const denied = twokeyCli(['exec', '--target', 'test-pg', '-f', file, '--wait'], alice);
      const mail2 = await waitForMail(outbox, 'bob@example.com', 'exec-2', new Set([mail.file]));
      await postDecision(mail2.link, mail2.token, 'deny');
      const out = await denied;
      expect(out.code).toBe(4);
      expect(out.stderr).toMatch(/denied by bob@example.com/);
    });

    it('twokey request-access opens a write window once approved', async () => {
      const alice = await stack.token('alice', ['support']);
      const asking = twokeyCli(['request-access', '--target', 'test-pg', '--minutes', '5', '--reason', 'incident 9'], alice);
      const mail = await waitForMail(outbox, 'bob@example.com', 'write access to test-pg for 5 minute(s)');
      expect(await (await fetch(mail.link)).text()).toContain('incident 9');
      await postDecision(mail.link, mail.token, 'approve');
      const out = await asking;
      expect(out.code).toBe(0);
      expect(out.stderr).toMatch(/writes on test-pg run on the write credential until/);
      const write = await (await psql('alice', ['support'], "UPDATE customers SET name = 'Window' WHERE id = 23")).done;
      expect(write.stdout).toMatch(/UPDATE 1/);
      expect(write.stderr).toMatch(/inside your approved write window/);
      // The window is alice's alone: another caller still waits for a reviewer.
      const other = await psql('dave', ['support'], "UPDATE customers SET name = 'Not Dave' WHERE id = 24");
      const mail2 = await waitForMail(outbox, 'bob@example.com', 'Not Dave');
      await postDecision(mail2.link, mail2.token, 'deny');
      expect((await other.done).stderr).toMatch(/approval required[\s\S]*denied/);
    });

    it('runs only writes inside a write window: a DDL statement still needs the approval its own rule asks for', async () => {
      const opening = await psql('wendy', [], 'SET twokey.request_access = 7');
      const mail = await waitForMail(outbox, 'bob@example.com', 'write access to test-pg for 7 minute(s)');
      await postDecision(mail.link, mail.token, 'approve');
      expect((await opening.done).stderr).toMatch(/writes on test-pg run on the write credential until/);
      const write = await (await psql('wendy', [], "UPDATE customers SET name = 'Wendy Window' WHERE id = 25")).done;
      expect(write.stderr).toMatch(/inside your approved write window/);
      // ddl on this target needs two of security, not the one dba who opened the window.
      const ddl = await psql('wendy', [], 'ALTER TABLE orders ADD COLUMN window_note text');
      const asked = await waitForMail(outbox, 'sam@example.com', 'ADD COLUMN window_note');
      expect(await adminQuery("SELECT 1 FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'window_note'")).toEqual([]);
      await postDecision(asked.link, asked.token, 'deny');
      expect((await ddl.done).stderr).toMatch(/denied by sam@example.com/);
      expect(await adminQuery("SELECT 1 FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'window_note'")).toEqual([]);
    });

    it('twokey approvals list shows a reviewer the requests they review or made, by principal', async () => {
      type Listed = { reviewers: { issuer: string; subject: string }[]; requester: { issuer: string; subject: string }; taskToken?: string };
      const list = async (token: string): Promise<Listed[]> =>
        (JSON.parse((await twokey(['approvals', 'list', '--json', '--url', stack.cp.httpUrl], { TWOKEY_TOKEN: token })).stdout) as { approvals: Listed[] }).approvals;
      const isBob = (p: { issuer: string; subject: string }): boolean => p.issuer === stack.cp.issuer && p.subject === 'bob';
      const forBob = await list(await stack.apiToken('bob', ['dba']));
      expect(forBob.length).toBeGreaterThan(3);
      expect(forBob.every((a) => a.reviewers.some(isBob) || isBob(a.requester))).toBe(true);
      expect(forBob.some((a) => 'taskToken' in a)).toBe(false);
      expect(await list(await stack.apiToken('erin', ['auditor']))).toEqual([]);
      // bob's address, even verified, on another subject is not bob; nor is an unverified claim of it.
      expect(await list(await stack.apiToken('mallet', ['dba'], { email: 'bob@example.com' }))).toEqual([]);
      expect(await list(await stack.apiToken('mallet', ['dba'], { email: 'bob@example.com', emailVerified: false }))).toEqual([]);
    });
  });

  it('ends as expired when nobody decides in time', async () => {
    const started = Date.now();
    const out = await (await psql('quinn', [], "UPDATE customers SET name = 'Too Late' WHERE id = 21")).done;
    expect(out.stderr).toMatch(/twokey: request [0-9a-f-]+ expired/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(9_000);
    expect(await adminQuery('SELECT name FROM customers WHERE id = 21')).toEqual([{ name: demoCustomer(21).name }]);
  }, 40_000);

  it('refuses writes that need approval when the control plane is unreachable, while reads go on', async () => {
    await stack.cp.stop();
    await waitFor(() => !stack.agent.tunnel.connected || undefined, 5_000, 'tunnel down');
    const out = await (await psql('amy', ['support'], 'SELECT count(*) FROM orders', "UPDATE customers SET name = 'Offline' WHERE id = 22")).done;
    expect(out.stdout).toMatch(/5000/);
    expect(out.stderr).toMatch(/approval required but unavailable: the control plane cannot be reached/);
    expect(readdirSync(outbox).length).toBeGreaterThan(0);
  });
});
