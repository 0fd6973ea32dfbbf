import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Page } from 'playwright-core';
import { spawnOidcIdp, type OidcIdpProcess } from '../../local/idp/oidc-idp-process';
import { TWOKEY_BIN, type CliResult } from './cli';
import { waitFor } from './control-plane';

export interface TestIdp extends OidcIdpProcess {
  readonly serviceSecret: string;
}

/** The real OpenID provider (`oidc-provider`) in its own process on a free loopback port; its service client's tokens carry the group `ci`. */
export async function startTestIdp(env: Record<string, string> = {}): Promise<TestIdp> {
  const serviceSecret = randomBytes(16).toString('hex');
  const idp = await spawnOidcIdp({ TWOKEY_IDP_SERVICE_SECRET: serviceSecret, TWOKEY_IDP_SERVICE_GROUPS: 'ci', ...env });
  return { ...idp, serviceSecret };
}

/** Signs in on oidc-provider's development form and grants consent, as a person would in the browser. */
export async function signInAs(page: Page, user: string): Promise<void> {
  await page.fill('input[name="login"]', user);
  await page.fill('input[name="password"]', 'any password');
  await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
  await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
}

export const LOGIN_TIMEOUT_MS = 30_000;
/** What `twokey login` prints for the browser flow, and for the device flow (the URL with the code filled in). */
export const AUTHORIZATION_URL_LINE = /^\s+(http:\/\/\S+\/auth\?\S+)$/m;
export const DEVICE_URL_LINE = /\(or open (http:\/\/\S+)\)/;

/** Runs `twokey login ARGS` and hands the URL it prints to `browse`, as a user would. */
export async function runLogin(args: string[], env: Record<string, string>, urlLine: RegExp, browse: (url: string) => Promise<void>): Promise<CliResult> {
  const child = spawn(process.execPath, [TWOKEY_BIN, 'login', '--no-browser', ...args], { env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += String(d)));
  child.stderr.on('data', (d) => (stderr += String(d)));
  const exited = new Promise<number>((resolve) => child.once('exit', (code) => resolve(code ?? 1)));
  const url = await waitFor(() => stderr.match(urlLine)?.[1], LOGIN_TIMEOUT_MS, 'the login URL');
  await browse(url);
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([exited, new Promise<number>((r) => (timer = setTimeout(() => r(-1), LOGIN_TIMEOUT_MS)))]);
  clearTimeout(timer);
  if (code === -1) child.kill();
  return { code, stdout, stderr };
}

/** On the device flow's verification page (code filled in): confirms the code, signs in, and checks the provider's success page. */
export async function confirmDeviceCode(page: Page, url: string, user: string): Promise<void> {
  await page.goto(url);
  await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
  await signInAs(page, user);
  if (!/Sign-in Success/i.test((await page.textContent('body')) ?? '')) throw new Error('the device sign-in did not succeed');
}
