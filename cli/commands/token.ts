import { DEFAULT_DATA_DIR, readDevInfo, readDevUsers } from '../../local/dev-config';
import { DEV_AUDIENCES, mintDevToken, readSigningKey, type Plane } from '../../local/oidc/dev-issuer';
import { parse, UsageError } from '../args';
import { freshToken, serviceToken } from '../auth/login-session';
import { configDir } from '../auth/token-cache';
import { execCredential } from '../kube-credentials';

const MAX_TTL_SECONDS = 24 * 3600;

/**
 * `twokey token`: a fresh token from `twokey login` (refreshed when about to expire; its audience is
 * the one the login asked for with `--resource`);
 * `--client-credentials`: a service's token (secret in TWOKEY_CLIENT_SECRET, never a flag: flags show in `ps`);
 * `--user NAME [--groups a,b] [--email E] [--audience data|api]`: a token signed by the dev issuer, for
 * the data plane (a psql password; the default) or for the control plane's HTTP API (`TWOKEY_TOKEN` of
 * the admin, auditor and approvals commands). `--kube` prints any of them as the ExecCredential a
 * kubeconfig's exec plugin returns (kubectl caches it until shortly before the token expires).
 */
export async function tokenCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    user: { type: 'string' },
    groups: { type: 'string' },
    email: { type: 'string' },
    audience: { type: 'string' },
    ttl: { type: 'string', default: '3600' },
    'data-dir': { type: 'string', default: DEFAULT_DATA_DIR },
    'client-credentials': { type: 'boolean', default: false },
    issuer: { type: 'string' },
    'client-id': { type: 'string' },
    scope: { type: 'string' },
    resource: { type: 'string' },
    kube: { type: 'boolean', default: false },
  });
  const print = (token: string): void => console.log(values.kube ? execCredential(token) : token);
  // A login's or a service's audience is the one its provider issued for (`--resource`); saying
  // another here would print a token that does not have it.
  if (!values.user && values.audience !== undefined) throw new UsageError('--audience goes with --user (dev tokens); a login gets its audience with twokey login --resource');
  if (values['client-credentials']) {
    const issuer = values.issuer ?? process.env.TWOKEY_ISSUER;
    const clientId = values['client-id'] ?? process.env.TWOKEY_CLIENT_ID;
    const clientSecret = process.env.TWOKEY_CLIENT_SECRET;
    if (!issuer || !clientId || !clientSecret) throw new UsageError('--client-credentials needs --issuer, --client-id and TWOKEY_CLIENT_SECRET');
    print(await serviceToken({ issuer, clientId, clientSecret, scope: values.scope, resource: values.resource }));
    return 0;
  }
  if (!values.user) {
    print(await freshToken(configDir()));
    return 0;
  }
  const audience = values.audience ?? 'data';
  if (!Object.hasOwn(DEV_AUDIENCES, audience)) throw new UsageError(`--audience takes ${Object.keys(DEV_AUDIENCES).join(' or ')}`);
  const ttl = Number(values.ttl);
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TTL_SECONDS) throw new UsageError(`--ttl takes 1 to ${MAX_TTL_SECONDS} seconds`);
  const known = readDevUsers()[values.user];
  const groups = values.groups !== undefined ? values.groups.split(',').map((g) => g.trim()).filter(Boolean) : (known?.groups ?? []);
  const info = await readDevInfo(values['data-dir']);
  const key = await readSigningKey(values['data-dir']);
  const token = await mintDevToken(info.issuer, key, { user: values.user, groups, audience: audience as Plane, email: values.email ?? known?.email, ttlSeconds: ttl });
  print(token);
  return 0;
}
