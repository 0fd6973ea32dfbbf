import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { DEFAULT_DATA_DIR, readDevInfo } from '../../local/dev-config';
import { DEV_AUDIENCES, mintDevToken, readSigningKey, type Plane } from '../../local/oidc/dev-issuer';
import { parse, UsageError } from '../args';

const USERS_FILE = resolve(__dirname, '..', '..', 'examples', 'dev', 'users.yaml');
const MAX_TTL_SECONDS = 24 * 3600;

/**
 * `twokey token --user NAME [--groups a,b] [--email E] [--audience data|api]`: a token signed by the dev
 * issuer, for the data plane (a psql password; the default) or for the control plane's HTTP API
 * (`TWOKEY_TOKEN` of the admin, auditor and approvals commands).
 */
export async function tokenCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    user: { type: 'string' },
    groups: { type: 'string' },
    email: { type: 'string' },
    audience: { type: 'string', default: 'data' },
    ttl: { type: 'string', default: '3600' },
    'data-dir': { type: 'string', default: DEFAULT_DATA_DIR },
  });
  if (!values.user) throw new UsageError('--user is required');
  const audience = values.audience;
  if (!Object.hasOwn(DEV_AUDIENCES, audience)) throw new UsageError(`--audience takes ${Object.keys(DEV_AUDIENCES).join(' or ')}`);
  const ttl = Number(values.ttl);
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TTL_SECONDS) throw new UsageError(`--ttl takes 1 to ${MAX_TTL_SECONDS} seconds`);
  const known = (parseYaml(await readFile(USERS_FILE, 'utf8')) as Record<string, { groups: string[]; email: string }>)[values.user];
  const groups = values.groups !== undefined ? values.groups.split(',').map((g) => g.trim()).filter(Boolean) : (known?.groups ?? []);
  const info = await readDevInfo(values['data-dir']);
  const key = await readSigningKey(values['data-dir']);
  const token = await mintDevToken(info.issuer, key, { user: values.user, groups, audience: audience as Plane, email: values.email ?? known?.email, ttlSeconds: ttl });
  console.log(token);
  return 0;
}
