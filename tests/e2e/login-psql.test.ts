import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { IDP_SERVICE_CLIENT_ID } from '../../local/idp/oidc-idp';
import { IDP_SERVICE_SECRET_FILE } from '../../local/dev-stack';
import { launchChromium, loopbackContext } from '../support/browser';
import { startDev, twokey, type DevProcess } from '../support/cli';
import { waitFor } from '../support/control-plane';
import { confirmDeviceCode, DEVICE_URL_LINE, runLogin, signInAs } from '../support/oidc-idp';
import { waitForMail } from '../support/outbox';

function psql(endpoint: string, token: string, sql: string): Promise<{ stdout: string; stderr: string }> {
  const [host, port] = endpoint.split(':');
  return new Promise((resolve) => {
    execFile('psql', [`host=${host} port=${port} dbname=demo user=whoever`, '-X', '-A', '-t', '-c', sql], { env: { ...process.env, PGPASSWORD: token } }, (_e, stdout, stderr) =>
      resolve({ stdout, stderr }),
    );
  });
}

describe('the README path with the local OpenID provider and the Slack stand-in (twokey dev --idp oidc --slack)', () => {
  let dev: DevProcess;
  let browser: Browser;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'tk-dev-idp-'));
    [dev, browser] = await Promise.all([startDev(dataDir, ['--idp', 'oidc', '--slack']), launchChromium()]);
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await dev?.stop();
  });

  it('logs alice in with the device code and connects psql with `twokey token` as the password', async () => {
    const env = { TWOKEY_CONFIG_DIR: join(mkdtempSync(join(tmpdir(), 'tk-cfg-')), 'twokey') };
    const login = await runLogin(['--device', '--data-dir', dataDir], env, DEVICE_URL_LINE, async (url) => {
      const page = await (await loopbackContext(browser)).newPage();
      await confirmDeviceCode(page, url, 'alice');
      await page.context().close();
    });
    expect(login.code).toBe(0);
    const token = (await twokey(['token'], env)).stdout.trim();
    const endpoint = dev.info.targets['demo-pg']?.endpoint as string;

    const read = await psql(endpoint, token, 'SELECT name FROM customers WHERE id = 2');
    const write = await psql(endpoint, token, 'DROP TABLE orders');

    expect(read.stdout.trim()).toBe('Chloe Ahmed');
    expect(write.stderr).toContain('twokey: blocked by no-destructive-statements');
  });

  it('authenticates a service by its client-credentials token, which the demo policy then grants nothing', async () => {
    const secret = readFileSync(join(dataDir, IDP_SERVICE_SECRET_FILE), 'utf8');
    const issuer = dev.info.idp?.issuer as string;
    const token = (await twokey(['token', '--client-credentials', '--issuer', issuer, '--client-id', IDP_SERVICE_CLIENT_ID], { TWOKEY_CLIENT_SECRET: secret })).stdout.trim();

    const result = await psql(dev.info.targets['demo-pg']?.endpoint as string, token, 'SELECT 1');

    // Authenticated (a rejected token ends the connection with password authentication failed); the demo policy grants group `ci` nothing.
    expect(result.stderr).toBe('ERROR:  twokey: no rule grants read on demo-pg\n');
  });

  it('lets a reviewer approve alice\'s write from the Slack stand-in\'s page', async () => {
    const token = (await twokey(['token', '--user', 'alice', '--data-dir', dataDir])).stdout.trim();
    const held = psql(dev.info.targets['demo-pg']?.endpoint as string, token, "UPDATE customers SET name = 'Slack Approved' WHERE id = 3");
    const viewer = dev.info.slack?.viewer as string;
    const page = await (await loopbackContext(browser)).newPage();
    await waitFor(async () => {
      await page.goto(viewer);
      return (await page.textContent('body'))?.includes("SET name = 'Slack Approved'") ? true : undefined;
    }, 15_000, 'the Slack message');

    await Promise.all([page.waitForNavigation(), page.click('form:has(input[value="U0BOB"]) button[value="approve"]')]);

    expect((await held).stdout).toContain('UPDATE 1');
    expect(await page.textContent('body')).toContain('Approved by bob@example.com');
  });

  it('lets bob, signed in through the local OpenID provider, approve alice\'s write from the mailed link', async () => {
    const token = (await twokey(['token', '--user', 'alice', '--data-dir', dataDir])).stdout.trim();
    const held = psql(dev.info.targets['demo-pg']?.endpoint as string, token, "UPDATE customers SET name = 'Signed-in Approved' WHERE id = 1");
    const mail = await waitForMail(dev.info.outboxDir, 'bob@example.com', 'Signed-in Approved');
    const page = await (await loopbackContext(browser)).newPage();
    await page.goto(mail.link);
    expect(await page.textContent('#sign-in')).toContain('Sign in to vote');

    await Promise.all([page.waitForNavigation(), page.click('#sign-in a')]);
    await signInAs(page, 'bob');
    await page.waitForURL(/\/approvals\/review\?t=/);
    expect(await page.textContent('#sign-in')).toContain('Signed in as bob@example.com');
    await Promise.all([page.waitForNavigation(), page.click('button[value="approve"]')]);

    expect(await page.textContent('h1')).toBe('Approved');
    expect((await held).stdout).toContain('UPDATE 1');
  });
});
