import { spawn } from 'node:child_process';
import { browserLogin } from '../auth/browser-login';
import { deviceLogin } from '../auth/device-login';
import { toCachedLogin } from '../auth/login-session';
import { discover, jwtPayload, OAuthError, postForm } from '../auth/oauth-client';
import { samlLogin } from '../auth/saml-login';
import { configDir, readLogin, removeLogin, writeLogin, type LoginSettings } from '../auth/token-cache';
import { DEFAULT_DATA_DIR, readDevInfo } from '../../local/dev-config';
import { parse, UsageError } from '../args';

export const DEFAULT_LOGIN_SCOPE = 'openid profile email offline_access';
/** What a SAML login is cached under: its tokens come from the control plane, not from an OAuth client. */
const SAML_CLIENT_ID = 'twokey-saml';

function openBrowser(url: string): void {
  const [cmd, ...args] =
    process.platform === 'darwin' ? ['open', url] : process.platform === 'win32' ? ['rundll32', 'url.dll,FileProtocolHandler', url] : ['xdg-open', url];
  try {
    const child = spawn(cmd as string, args, { stdio: 'ignore', detached: true });
    child.on('error', () => undefined);
    child.unref();
  } catch {
    // The URL is printed as well; a missing opener is not an error.
  }
}

function parseParams(list: readonly string[] | undefined): Record<string, string> | undefined {
  if (!list || list.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf('=');
    if (eq < 1) throw new UsageError(`--param takes NAME=VALUE, not ${item}`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

/** Issuer and client from the flags, else the environment, else a running `twokey dev --idp oidc`. */
async function loginSettings(values: {
  issuer?: string;
  'client-id'?: string;
  scope?: string;
  resource?: string;
  use: string;
  param?: string[];
  'data-dir': string;
}): Promise<LoginSettings> {
  const env = process.env;
  let issuer = values.issuer ?? env.TWOKEY_ISSUER;
  let clientId = values['client-id'] ?? env.TWOKEY_CLIENT_ID;
  let resource = values.resource;
  if (issuer === undefined && clientId === undefined) {
    const idp = (await readDevInfo(values['data-dir']).catch(() => undefined))?.idp;
    if (!idp) throw new UsageError('--issuer and --client-id are required (or TWOKEY_ISSUER and TWOKEY_CLIENT_ID, or a running `twokey dev --idp oidc`)');
    ({ issuer, clientId } = idp);
    resource ??= idp.resource;
  }
  if (!issuer || !clientId) throw new UsageError('--issuer and --client-id go together');
  if (values.use !== 'access' && values.use !== 'id') throw new UsageError('--use takes access or id');
  return { issuer, clientId, scope: values.scope ?? DEFAULT_LOGIN_SCOPE, resource, use: values.use, extraParams: parseParams(values.param) };
}

/** `twokey login [--device] [--issuer URL --client-id ID] ...`: signs in with the organisation's OpenID provider and caches the tokens. */
export async function loginCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    issuer: { type: 'string' },
    'client-id': { type: 'string' },
    scope: { type: 'string' },
    resource: { type: 'string' },
    use: { type: 'string', default: 'access' },
    param: { type: 'string', multiple: true },
    device: { type: 'boolean', default: false },
    saml: { type: 'boolean', default: false },
    url: { type: 'string' },
    'no-browser': { type: 'boolean', default: false },
    port: { type: 'string', default: '0' },
    'data-dir': { type: 'string', default: DEFAULT_DATA_DIR },
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError('--port takes 0 to 65535');
  const open = (url: string): void => {
    console.error(`Opening the browser to sign in. If it does not open, visit:\n  ${url}`);
    if (!values['no-browser']) openBrowser(url);
  };
  if (values.saml) return samlLoginCommand(values.url ?? (await readDevInfo(values['data-dir'])).controlPlane.httpUrl, port, open);
  const settings = await loginSettings(values);
  const metadata = await discover(settings.issuer);
  const tokens = values.device
    ? await deviceLogin({
        settings,
        metadata,
        prompt: (p) =>
          console.error(
            `To sign in, open ${p.verificationUri} and enter the code ${p.userCode}` +
              (p.verificationUriComplete ? `\n  (or open ${p.verificationUriComplete})` : '') +
              `\nWaiting up to ${Math.round(p.expiresInSeconds / 60)} min ...`,
          ),
      })
    : await browserLogin({
        settings,
        metadata,
        port,
        open,
      });
  const login = toCachedLogin(settings, tokens, Date.now());
  await writeLogin(configDir(), login);
  const claims = jwtPayload(login.idToken ?? login.accessToken);
  const who = [claims?.preferred_username, claims?.email, claims?.sub].find((v) => typeof v === 'string') ?? 'unknown';
  console.error(`Logged in to ${settings.issuer} as ${String(who)}${login.refreshToken ? '' : ' (no refresh token: log in again when the token expires)'}.`);
  return 0;
}

/** `twokey login --saml`: the control plane's token after a SAML sign-in, cached like any login (without a refresh token). */
async function samlLoginCommand(controlPlaneUrl: string, port: number, open: (url: string) => void): Promise<number> {
  const token = await samlLogin({ controlPlaneUrl, port, open });
  const issuer = jwtPayload(token)?.iss;
  if (typeof issuer !== 'string') throw new OAuthError('invalid_response', 'the control plane sent a token without an issuer');
  const login = toCachedLogin({ issuer, clientId: SAML_CLIENT_ID, scope: '', use: 'access' }, { access_token: token, token_type: 'Bearer' }, Date.now());
  await writeLogin(configDir(), login);
  console.error(`Logged in through SAML as ${String(jwtPayload(token)?.sub)} until ${new Date(login.expiresAt * 1000).toISOString()}.`);
  return 0;
}

/** `twokey logout`: revokes the refresh token (RFC 7009) when the provider allows it, and forgets the login. */
export async function logoutCommand(argv: string[]): Promise<number> {
  parse(argv, {});
  const dir = configDir();
  const login = await readLogin(dir).catch(() => undefined);
  if (login?.refreshToken) {
    try {
      const metadata = await discover(login.issuer);
      if (metadata.revocation_endpoint) {
        await postForm(metadata.revocation_endpoint, { token: login.refreshToken, token_type_hint: 'refresh_token' }, { clientId: login.clientId }, 'revocation');
      }
    } catch (e) {
      console.error(`twokey logout: could not revoke the refresh token at the provider (${e instanceof Error ? e.message : String(e)}); forgetting it here`);
    }
  }
  await removeLogin(dir);
  console.error(login ? `Logged out of ${login.issuer}.` : 'Not logged in.');
  return 0;
}
