import { hostname } from 'node:os';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { IDP_HTTP_TIMEOUT_MS } from './oauth-client';

export const LOGIN_LOCK_FILE = 'login.lock';
/** How long a refresh waits for another one to finish: discovery and the token request, each bounded. */
export const LOGIN_LOCK_WAIT_MS = 2 * IDP_HTTP_TIMEOUT_MS + 5_000;
/** A lock older than this is left over from a process that died mid-refresh (no refresh lasts this long). */
export const STALE_LOGIN_LOCK_MS = 2 * LOGIN_LOCK_WAIT_MS;
const LOCK_POLL_MS = 50;

export class LoginLockError extends Error {
  override name = 'LoginLockError';
}

interface LockOwner {
  readonly pid: number;
  readonly host: string;
}

/** A lock whose owner is gone: too old, or held by a process of this machine that no longer runs. */
async function isStale(file: string, nowMs: number): Promise<boolean> {
  try {
    const [info, text] = await Promise.all([stat(file), readFile(file, 'utf8')]);
    if (nowMs - info.mtimeMs > STALE_LOGIN_LOCK_MS) return true;
    const owner = JSON.parse(text) as Partial<LockOwner>;
    if (owner.host !== hostname() || typeof owner.pid !== 'number') return false;
    try {
      process.kill(owner.pid, 0);
      return false;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'ESRCH';
    }
  } catch {
    // Gone meanwhile, or being written: not stale, try again.
    return false;
  }
}

/**
 * Runs `work` while holding DIR/login.lock (created exclusively), so that two `twokey token`
 * processes never refresh at once: a rotated refresh token is good for one use, and a provider that
 * sees it used twice revokes the whole login (RFC 9700 §4.14.2). The wait is bounded; a lock left by
 * a process that died is taken over.
 */
export async function withLoginLock<T>(dir: string, work: () => Promise<T>, waitMs = LOGIN_LOCK_WAIT_MS): Promise<T> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, LOGIN_LOCK_FILE);
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      await writeFile(file, JSON.stringify({ pid: process.pid, host: hostname() } satisfies LockOwner), { flag: 'wx', mode: 0o600 });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    if (await isStale(file, Date.now())) {
      await rm(file, { force: true });
      continue;
    }
    if (Date.now() > deadline) throw new LoginLockError(`another twokey has been refreshing the login for ${Math.round(waitMs / 1000)}s (${file}); try again`);
    await new Promise((resolve) => setTimeout(resolve, LOCK_POLL_MS));
  }
  try {
    return await work();
  } finally {
    await rm(file, { force: true });
  }
}
