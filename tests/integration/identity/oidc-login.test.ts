import { chmodSync, existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { freshToken } from '../../../cli/auth/login-session';
import { LOGIN_LOCK_FILE, withLoginLock } from '../../../cli/auth/login-lock';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { fetchJson } from '../../../core/identity/fetch-json';
import { CLOCK_SKEW_SECONDS, JWKS_REFETCH_COOLDOWN_MS, TokenVerifier } from '../../../core/identity/verifier';
import { IDP_AUDIENCES, IDP_CLI_CLIENT_ID, IDP_GROUPS_CLAIM, IDP_RESOURCES, IDP_SERVICE_CLIENT_ID } from '../../../local/idp/oidc-idp';
import { planeIssuerConfig } from '../../../local/oidc/dev-issuer';
import { launchChromium, loopbackContext } from '../../support/browser';
import { twokey, type CliResult } from '../../support/cli';
import { AUTHORIZATION_URL_LINE, confirmDeviceCode, DEVICE_URL_LINE, runLogin, signInAs, startTestIdp, type TestIdp } from '../../support/oidc-idp';

/** Above Linux's default pid_max (4194304 at most): no process has it. */
const DEAD_PID = 2 ** 22 + 1;

function header(token: string): { kid?: string } {
  return JSON.parse(Buffer.from(token.split('.')[0] as string, 'base64url').toString()) as { kid?: string };
}
function claims(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()) as Record<string, unknown>;
}

describe('twokey login against a real OpenID provider (oidc-provider)', () => {
  let idp: TestIdp;
  let browser: Browser;
  let configDir: string;
  const env = (): Record<string, string> => ({ TWOKEY_CONFIG_DIR: configDir });
  const loginFile = (): string => join(configDir, 'login.json');
  const verifier = (audience = IDP_AUDIENCES.data, nowMs = Date.now): TokenVerifier =>
    new TokenVerifier([{ issuer: idp.issuer, audience, groupsClaim: IDP_GROUPS_CLAIM }], { fetchJson, nowMs });

  /** A page in a fresh browser profile: each person signs in anew, with no session cookie of an earlier test. */
  async function freshPage(): Promise<Page> {
    return (await loopbackContext(browser)).newPage();
  }

  const login = (args: string[], urlLine: RegExp, browse: (url: string) => Promise<void>): Promise<CliResult> =>
    runLogin(['--issuer', idp.issuer, '--client-id', IDP_CLI_CLIENT_ID, ...args], env(), urlLine, browse);

  const browserLogin = (user: string): Promise<CliResult> =>
    login([], AUTHORIZATION_URL_LINE, async (url) => {
      const page = await freshPage();
      await page.goto(url);
      await signInAs(page, user);
      expect(await page.textContent('body')).toContain('twokey received the sign-in response');
      await page.context().close();
    });

  beforeAll(async () => {
    [idp, browser] = await Promise.all([startTestIdp(), launchChromium()]);
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await idp?.stop();
  });
  beforeEach(() => {
    configDir = join(mkdtempSync(join(tmpdir(), 'tk-login-')), 'twokey');
  });

  it('logs in with PKCE through the browser on a loopback redirect and caches the tokens readable by the user alone', async () => {
    const result = await login([], AUTHORIZATION_URL_LINE, async (url) => {
      const params = new URL(url).searchParams;
      expect(params.get('code_challenge_method')).toBe('S256');
      expect(params.get('redirect_uri')).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/);
      const page = await freshPage();
      await page.goto(url);
      await signInAs(page, 'alice');
      expect(await page.textContent('body')).toContain('twokey received the sign-in response');
      await page.context().close();
    });

    expect(result).toMatchObject({ code: 0 });
    expect(result.stderr).toContain('Logged in to');
    expect(statSync(loginFile()).mode & 0o777).toBe(0o600);
    expect(statSync(configDir).mode & 0o777).toBe(0o700);
    const printed = await twokey(['token'], env());
    expect(printed.code).toBe(0);
    const verified = await verifier().verify(printed.stdout.trim());
    expect(verified).toMatchObject({ ok: true, value: { subject: 'alice', email: 'alice@example.com', groups: ['support'], issuer: idp.issuer } });
  });

  it('prints the cached token while it is fresh and refreshes it with the refresh token when it is about to expire', async () => {
    expect((await browserLogin('bob')).code).toBe(0);
    const first = (await twokey(['token'], env())).stdout.trim();
    expect((await twokey(['token'], env())).stdout.trim()).toBe(first);
    const cached = JSON.parse(readFileSync(loginFile(), 'utf8')) as { expiresAt: number; refreshToken: string };
    writeFileSync(loginFile(), JSON.stringify({ ...cached, expiresAt: Math.floor(Date.now() / 1000) + 30 }));

    const refreshed = await twokey(['token'], env());

    expect(refreshed).toMatchObject({ code: 0, stderr: '' });
    const token = refreshed.stdout.trim();
    expect(token).not.toBe(first);
    expect(await verifier().verify(token)).toMatchObject({ ok: true, value: { subject: 'bob', groups: ['dba'] } });
    const after = JSON.parse(readFileSync(loginFile(), 'utf8')) as { expiresAt: number; refreshToken: string };
    expect(after.expiresAt).toBe(claims(token).exp);
    expect(after.refreshToken).not.toBe(cached.refreshToken); // rotated for a public client
    expect(statSync(loginFile()).mode & 0o777).toBe(0o600);
  });

  it('refreshes once when two twokey token calls find the token expiring at the same moment, and the login keeps working', async () => {
    expect((await browserLogin('bob')).code).toBe(0);
    const cached = JSON.parse(readFileSync(loginFile(), 'utf8')) as { expiresAt: number; refreshToken: string };
    writeFileSync(loginFile(), JSON.stringify({ ...cached, expiresAt: 0 }), { mode: 0o600 });

    // In one process both read the cache before either writes it: the race is certain, not left to scheduling.
    const [a, b] = await Promise.all([freshToken(configDir), freshToken(configDir)]);
    const [c, d] = await Promise.all([twokey(['token'], env()), twokey(['token'], env())]);

    expect(a).toBe(b);
    expect(await verifier().verify(a)).toMatchObject({ ok: true, value: { subject: 'bob' } });
    expect([c.code, d.code, c.stderr, d.stderr]).toEqual([0, 0, '', '']);
    writeFileSync(loginFile(), JSON.stringify({ ...JSON.parse(readFileSync(loginFile(), 'utf8')), expiresAt: 0 }), { mode: 0o600 });
    const later = await twokey(['token'], env());
    expect(later).toMatchObject({ code: 0, stderr: '' });
    expect(existsSync(join(configDir, LOGIN_LOCK_FILE))).toBe(false);
  });

  it('takes over the lock of a refresh whose process died, and waits a bounded time for a live one', async () => {
    expect((await browserLogin('bob')).code).toBe(0);
    const cached = JSON.parse(readFileSync(loginFile(), 'utf8')) as Record<string, unknown>;
    writeFileSync(loginFile(), JSON.stringify({ ...cached, expiresAt: 0 }), { mode: 0o600 });
    writeFileSync(join(configDir, LOGIN_LOCK_FILE), JSON.stringify({ pid: DEAD_PID, host: hostname() }), { mode: 0o600 });

    expect(await twokey(['token'], env())).toMatchObject({ code: 0, stderr: '' });

    writeFileSync(loginFile(), JSON.stringify({ ...cached, expiresAt: 0 }), { mode: 0o600 });
    writeFileSync(join(configDir, LOGIN_LOCK_FILE), JSON.stringify({ pid: process.pid, host: hostname() }), { mode: 0o600 });
    await expect(withLoginLock(configDir, async () => 'never', 300)).rejects.toThrow(/another twokey has been refreshing/);
  });

  it('logs in with the device authorization grant (--device) when there is no browser on this machine', async () => {
    const result = await login(['--device'], DEVICE_URL_LINE, async (url) => {
      const page = await freshPage();
      await confirmDeviceCode(page, url, 'carol');
      await page.context().close();
    });

    expect(result.code).toBe(0);
    const token = (await twokey(['token'], env())).stdout.trim();
    expect(await verifier().verify(token)).toMatchObject({ ok: true, value: { subject: 'carol', groups: ['dba'] } });
  });

  it('revokes the refresh token on logout, after which neither the cache nor the old refresh token gives a token', async () => {
    expect((await browserLogin('alice')).code).toBe(0);
    const saved = JSON.parse(readFileSync(loginFile(), 'utf8')) as Record<string, unknown>;

    expect((await twokey(['logout'], env())).code).toBe(0);

    const none = await twokey(['token'], env());
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('not logged in: run twokey login');
    writeFileSync(loginFile(), JSON.stringify({ ...saved, expiresAt: 0 }), { mode: 0o600 });
    const revoked = await twokey(['token'], env());
    expect(revoked.code).toBe(1);
    expect(revoked.stderr).toContain('expired or was revoked');
  });

  it('refuses a login cache that other users can read', async () => {
    expect((await browserLogin('alice')).code).toBe(0);
    chmodSync(loginFile(), 0o644);

    const result = await twokey(['token'], env());

    expect(result.code).toBe(1);
    expect(result.stderr).toContain('can be read by others');
    expect(result.stdout).toBe('');
  });

  it('gives a service its token with client credentials, the secret taken from the environment', async () => {
    const args = ['token', '--client-credentials', '--issuer', idp.issuer, '--client-id', IDP_SERVICE_CLIENT_ID];
    const wrong = await twokey(args, { ...env(), TWOKEY_CLIENT_SECRET: 'not-the-secret' });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('invalid_client');

    const result = await twokey(args, { ...env(), TWOKEY_CLIENT_SECRET: idp.serviceSecret });

    expect(result.code).toBe(0);
    expect(await verifier().verify(result.stdout.trim())).toMatchObject({ ok: true, value: { subject: IDP_SERVICE_CLIENT_ID, groups: ['ci'] } });
  });

  it('rejects a real token whose audience is another API, and one past its expiry', async () => {
    const token = (await twokey(['token', '--client-credentials', '--issuer', idp.issuer, '--client-id', IDP_SERVICE_CLIENT_ID], { TWOKEY_CLIENT_SECRET: idp.serviceSecret })).stdout.trim();
    const exp = claims(token).exp as number;

    const otherAudience = await verifier('another-api').verify(token);
    const expired = await verifier(IDP_AUDIENCES.data, () => (exp + CLOCK_SKEW_SECONDS + 1) * 1000).verify(token);

    expect(otherAudience).toMatchObject({ ok: false, error: { reason: 'bad-claims' } });
    expect(expired).toMatchObject({ ok: false, error: { reason: 'expired' } });
  });

  it('issues a data-plane token by default and an API token only for the API resource; each plane refuses the other', async () => {
    const base = ['token', '--client-credentials', '--issuer', idp.issuer, '--client-id', IDP_SERVICE_CLIENT_ID];
    const secret = { TWOKEY_CLIENT_SECRET: idp.serviceSecret };
    const data = (await twokey(base, secret)).stdout.trim();
    const api = (await twokey([...base, '--resource', IDP_RESOURCES.api], secret)).stdout.trim();
    const plane = (p: 'data' | 'api'): TokenVerifier => new TokenVerifier([planeIssuerConfig(idp.issuer, IDP_AUDIENCES, p, IDP_GROUPS_CLAIM)], { fetchJson, nowMs: Date.now });

    expect(await plane('data').verify(data)).toMatchObject({ ok: true });
    expect(await plane('api').verify(api)).toMatchObject({ ok: true });
    expect(await plane('api').verify(data)).toMatchObject({ ok: false, error: { reason: 'bad-claims' } });
    expect(await plane('data').verify(api)).toMatchObject({ ok: false, error: { reason: 'bad-claims' } });
    // --audience names a dev token's plane; a provider's token has the audience of its --resource.
    const misleading = await twokey([...base, '--audience', 'api'], secret);
    expect(misleading).toMatchObject({ code: 2, stdout: '' });
    expect(misleading.stderr).toContain('--audience goes with --user');
  });

  it('follows a rotated signing key: tokens under the new key verify, tokens under the retired key no longer do', async () => {
    expect((await browserLogin('alice')).code).toBe(0);
    const before = (await twokey(['token'], env())).stdout.trim();
    let now = Date.now();
    const agent = verifier(IDP_AUDIENCES.data, () => now);
    expect(await agent.verify(before)).toMatchObject({ ok: true });

    const kid = await idp.rotate();
    const cached = JSON.parse(readFileSync(loginFile(), 'utf8')) as Record<string, unknown>;
    writeFileSync(loginFile(), JSON.stringify({ ...cached, expiresAt: 0 }));
    const refreshed = await twokey(['token'], env());
    expect(refreshed).toMatchObject({ code: 0, stderr: '' });
    const after = refreshed.stdout.trim();
    now += JWKS_REFETCH_COOLDOWN_MS + 1;

    expect(header(after).kid).toBe(kid);
    expect(header(before).kid).not.toBe(kid);
    expect(await agent.verify(after)).toMatchObject({ ok: true, value: { subject: 'alice' } });
    expect(await agent.verify(before)).toMatchObject({ ok: false, error: { reason: 'unknown-key' } });
  });
});
