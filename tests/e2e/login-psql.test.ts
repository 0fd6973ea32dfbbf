import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { IDP_SERVICE_CLIENT_ID } from '../../local/idp/oidc-idp';
import { IDP_SERVICE_SECRET_FILE } from '../../local/dev-stack';
import { launchChromium, loopbackContext } from '../support/browser';
import { startDev, twokey, type DevProcess } from '../support/cli';
import { confirmDeviceCode, DEVICE_URL_LINE, runLogin } from '../support/oidc-idp';

function psql(endpoint: string, token: string, sql: string): Promise<{ stdout: string; stderr: string }> {
  const [host, port] = endpoint.split(':');
  return new Promise((resolve) => {
    execFile('psql', [`host=${host} port=${port} dbname=demo user=whoever`, '-X', '-A', '-t', '-c', sql], { env: { ...process.env, PGPASSWORD: token } }, (_e, stdout, stderr) =>
      resolve({ stdout, stderr }),
    );
  });
}

describe('the README path with the local OpenID provider (twokey dev --idp oidc)', () => {
  let dev: DevProcess;
  let browser: Browser;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'tk-dev-idp-'));
    [dev, browser] = await Promise.all([startDev(dataDir, ['--memory', '--idp', 'oidc']), launchChromium()]);
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
});
