import { DEFAULT_DATA_DIR, readDevInfo, readDevUsers } from '../../local/dev-config';
import { mintDevToken, readSigningKey } from '../../local/oidc/dev-issuer';
import { parse, UsageError } from '../args';
import { freshToken, serviceToken } from '../auth/login-session';
import { configDir } from '../auth/token-cache';

const MAX_TTL_SECONDS = 24 * 3600;

/**
 * `twokey token`: a fresh token from `twokey login` (refreshed when about to expire);
 * `--client-credentials`: a service's token (secret in TWOKEY_CLIENT_SECRET, never a flag: flags show in `ps`);
 * `--user NAME [--groups a,b] [--email E]`: a token signed by the dev issuer.
 */
export async function tokenCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    user: { type: 'string' },
    groups: { type: 'string' },
    email: { type: 'string' },
    ttl: { type: 'string', default: '3600' },
    'data-dir': { type: 'string', default: DEFAULT_DATA_DIR },
    'client-credentials': { type: 'boolean', default: false },
    issuer: { type: 'string' },
    'client-id': { type: 'string' },
    scope: { type: 'string' },
    resource: { type: 'string' },
  });
  if (values['client-credentials']) {
    const issuer = values.issuer ?? process.env.TWOKEY_ISSUER;
    const clientId = values['client-id'] ?? process.env.TWOKEY_CLIENT_ID;
    const clientSecret = process.env.TWOKEY_CLIENT_SECRET;
    if (!issuer || !clientId || !clientSecret) throw new UsageError('--client-credentials needs --issuer, --client-id and TWOKEY_CLIENT_SECRET');
    console.log(await serviceToken({ issuer, clientId, clientSecret, scope: values.scope, resource: values.resource }));
    return 0;
  }
  if (!values.user) {
    console.log(await freshToken(configDir()));
    return 0;
  }
  const ttl = Number(values.ttl);
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TTL_SECONDS) throw new UsageError(`--ttl takes 1 to ${MAX_TTL_SECONDS} seconds`);
  const known = readDevUsers()[values.user];
  const groups = values.groups !== undefined ? values.groups.split(',').map((g) => g.trim()).filter(Boolean) : (known?.groups ?? []);
  const info = await readDevInfo(values['data-dir']);
  const key = await readSigningKey(values['data-dir']);
  const token = await mintDevToken(info.issuer, key, { user: values.user, groups, email: values.email ?? known?.email, ttlSeconds: ttl });
  console.log(token);
  return 0;
}
