import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { api, tokenFor, waitFor } from '../support/control-plane';
import { waitForMail } from '../support/outbox';
import { PG_TEST_POLICY, startPgStack, type PgStack } from '../support/pg-stack';
import { proposePolicyChange, SECOND_ADMIN, withAdmins } from '../support/policy-change';

/** Flags for headless Chromium on a machine without network or a sandbox-capable user (playwright adds a fresh profile). */
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

describe('the approval page in a real browser', () => {
  let stack: PgStack;
  let browser: Browser;

  beforeAll(async () => {
    // The stack serves the policy at its dev issuer; root and grace administer it (policy changes).
    stack = await startPgStack({ policy: withAdmins(PG_TEST_POLICY) });
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      headless: true,
      args: CHROMIUM_ARGS,
    });
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  it('opens the link, shows the statement, and approves with a click', async () => {
    const { host, port } = stack.endpoint('test-pg');
    const token = await stack.token('alice', ['support']);
    const psql = new Promise<{ stdout: string; stderr: string }>((resolve) => {
      execFile('psql', [`host=${host} port=${port} dbname=demo user=alice`, '-X', '-c', "UPDATE orders SET status = 'clicked' WHERE id = 42"], { env: { ...process.env, PGPASSWORD: token } }, (_e, stdout, stderr) =>
        resolve({ stdout, stderr }),
      );
    });
    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', 'clicked');

    const page = await browser.newPage();
    await page.goto(mail.link);
    expect(await page.textContent('#statement')).toBe("UPDATE orders SET status = 'clicked' WHERE id = 42");
    expect(await page.textContent('body')).toContain('Requested by');
    await page.screenshot({ path: join(mkdtempSync(join(tmpdir(), 'tk-shot-')), 'review.png') });
    await Promise.all([page.waitForNavigation(), page.click('button[value="approve"]')]);
    expect(await page.textContent('h1')).toBe('Approved');

    const out = await psql;
    expect(out.stdout).toMatch(/UPDATE 1/);
    await page.goto(mail.link);
    expect(await page.textContent('h1')).toBe('Already decided');
  });

  it('shows hidden characters as escapes and who asks by subject, issuer and groups; a CR/LF in the name stays out of the headers', async () => {
    const { host, port } = stack.endpoint('test-pg');
    const token = await stack.token('alice', ['support'], { name: 'Alice\r\nBcc: everyone@example.com' });
    // U+202E reverses what follows it on screen; U+200B is invisible: the reviewer must see both.
    const statement = "UPDATE orders SET status = 'paid\u202E' WHERE id = 43 /*\u200B*/";
    const psql = new Promise<{ stdout: string; stderr: string }>((resolve) => {
      execFile('psql', [`host=${host} port=${port} dbname=demo user=alice`, '-X', '-c', statement], { env: { ...process.env, PGPASSWORD: token } }, (_e, stdout, stderr) => resolve({ stdout, stderr }));
    });
    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', 'id = 43');
    expect(mail.text).not.toMatch(/^Bcc:/m);
    expect(mail.subject).toBe('[twokey] Alice\\u000D\\u000ABcc: everyone@example.com asks to run a write on test-pg');

    const page = await browser.newPage();
    await page.goto(mail.link);
    expect(await page.textContent('#statement')).toBe("UPDATE orders SET status = 'paid\\u202E' WHERE id = 43 /*\\u200B*/");
    expect(await page.locator('#statement mark.hidden-char').allTextContents()).toEqual(['\\u202E', '\\u200B']);
    const requester = (await page.textContent('#requester')) ?? '';
    expect(requester).toContain(`subject alice at ${stack.cp.issuer}`);
    expect(requester).toContain('groups: support');
    expect(requester).toContain('Alice\\u000D\\u000ABcc: everyone@example.com');
    await Promise.all([page.waitForNavigation(), page.click('button[value="deny"]')]);
    expect(await page.textContent('h1')).toBe('Denied');
    expect((await psql).stderr).toMatch(/denied by bob@example.com/);
  });

  it('shows a policy change as a diff with the whole proposal, and a click approves it', async () => {
    const root = await tokenFor(stack.cp, 'root', ['admin']);
    const current = (await api(stack.cp, root, 'GET', '/policies')).body as { version: number; source: string };
    const proposed = current.source.replace('write: allow', 'write: deny');
    expect(proposed).not.toBe(current.source);
    const requestId = await proposePolicyChange(stack.cp, root, proposed, current.version, '?reason=loader%20goes%20read-only');
    const mail = await waitForMail(stack.cp.outboxDir, SECOND_ADMIN, requestId);

    const page = await browser.newPage();
    await page.goto(mail.link);
    expect(await page.textContent('h1')).toBe('Policy change requested');
    expect(await page.textContent('#reason')).toBe('loader goes read-only');
    expect(await page.textContent('#diff .del')).toContain('-    actions: { read: allow, write: allow }');
    expect(await page.textContent('#diff .add')).toContain('+    actions: { read: allow, write: deny }');
    expect(await page.isVisible('#proposed')).toBe(false);
    await page.click('summary');
    expect(await page.textContent('#proposed')).toBe(proposed);
    await Promise.all([page.waitForNavigation(), page.click('button[value="approve"]')]);
    expect(await page.textContent('h1')).toBe('Approved');

    await waitFor(async () => ((await api(stack.cp, root, 'GET', '/policies')).body.version === current.version + 1 ? true : undefined), 10_000, 'approved version');
    expect((await api(stack.cp, root, 'GET', '/policies')).body.source).toBe(proposed);
  });
});
