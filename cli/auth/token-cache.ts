import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';

export const LOGIN_FILE = 'login.json';
const MAX_LOGIN_FILE_BYTES = 64 * 1024;

/** What `twokey login` was told: enough to refresh and to log in again the same way. */
export interface LoginSettings {
  readonly issuer: string;
  readonly clientId: string;
  readonly scope: string;
  /** RFC 8707 resource indicator, for providers that issue access tokens per resource. */
  readonly resource?: string;
  /** Which token `twokey token` prints: the access token (its audience is the API) or the ID token (audience = client id, e.g. Google). */
  readonly use: 'access' | 'id';
  /** Provider-specific authorization parameters (e.g. Auth0's `audience`). */
  readonly extraParams?: Readonly<Record<string, string>>;
}

const cachedLoginSchema = z.object({
  version: z.literal(1),
  issuer: z.string().url(),
  clientId: z.string().min(1),
  scope: z.string(),
  resource: z.string().optional(),
  use: z.enum(['access', 'id']),
  extraParams: z.record(z.string(), z.string()).optional(),
  accessToken: z.string(),
  idToken: z.string().optional(),
  refreshToken: z.string().optional(),
  /** Epoch seconds at which the token `use` names stops being valid. */
  expiresAt: z.number(),
});

export type CachedLogin = z.infer<typeof cachedLoginSchema>;

export class LoginCacheError extends Error {
  override name = 'LoginCacheError';
}

/** `$TWOKEY_CONFIG_DIR`, else `$XDG_CONFIG_HOME/twokey`, else `~/.config/twokey` (`%APPDATA%\twokey` on Windows). */
export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TWOKEY_CONFIG_DIR) return env.TWOKEY_CONFIG_DIR;
  if (env.XDG_CONFIG_HOME) return join(env.XDG_CONFIG_HOME, 'twokey');
  if (process.platform === 'win32' && env.APPDATA) return join(env.APPDATA, 'twokey');
  return join(homedir(), '.config', 'twokey');
}

/**
 * The cached login holds a refresh token: a bearer secret. It is written 0600 in a 0700 directory
 * (atomically, never half written), and a file that others could read or that another user owns is
 * refused rather than used, as ssh does with keys.
 */
export async function readLogin(dir: string): Promise<CachedLogin | undefined> {
  const file = join(dir, LOGIN_FILE);
  let info;
  try {
    info = await lstat(file);
  } catch {
    return undefined;
  }
  if (!info.isFile()) throw new LoginCacheError(`${file} is not a regular file`);
  if (process.platform !== 'win32') {
    if ((info.mode & 0o077) !== 0) throw new LoginCacheError(`${file} can be read by others (mode ${(info.mode & 0o777).toString(8)}); run twokey logout and log in again`);
    if (typeof process.getuid === 'function' && info.uid !== process.getuid()) throw new LoginCacheError(`${file} belongs to another user`);
  }
  if (info.size > MAX_LOGIN_FILE_BYTES) throw new LoginCacheError(`${file} is too large`);
  const parsed = cachedLoginSchema.safeParse(JSON.parse(await readFile(file, 'utf8')));
  if (!parsed.success) throw new LoginCacheError(`${file} is not a twokey login; run twokey login again`);
  return parsed.data;
}

export async function writeLogin(dir: string, login: CachedLogin): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const temp = join(dir, `.${LOGIN_FILE}.${randomBytes(6).toString('hex')}`);
  await writeFile(temp, JSON.stringify(login), { mode: 0o600, flag: 'wx' });
  await rename(temp, join(dir, LOGIN_FILE));
}

export async function removeLogin(dir: string): Promise<void> {
  await rm(join(dir, LOGIN_FILE), { force: true });
}
