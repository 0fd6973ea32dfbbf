import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../support/browser';
import { waitForMail } from '../support/outbox';
import { startPgStack, type PgStack } from '../support/pg-stack';

describe('the approval page in a real browser', () => {
  let stack: PgStack;
  let browser: Browser;

  beforeAll(async () => {
    stack = await startPgStack();
    browser = await launchChromium();
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
});
