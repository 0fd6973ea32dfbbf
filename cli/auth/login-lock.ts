import { randomUUID } from 'node:crypto';
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
const TAKEOVER_GUARD_SUFFIX = '.takeover';
/** A takeover guard is held for a stat, a read and a remove; one this old was left by a process that died holding it. */
const STALE_TAKEOVER_GUARD_MS = 10_000;

export class LoginLockError extends Error {
  override name = 'LoginLockError';
}

interface LockOwner {
  readonly pid: number;
  readonly host: string;
  /** Tells this holder's lock from one that replaced it (the same process may take it again). */
  readonly nonce: string;
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
 * Removes a stale lock under a guard file, judging it stale again there: contenders that judged the
 * same dead lock stale would otherwise each remove it, the later ones removing the lock the first had
 * just taken, and refresh at once. False when another contender holds the guard.
 */
async function removeStaleLock(file: string): Promise<boolean> {
  const guard = `${file}${TAKEOVER_GUARD_SUFFIX}`;
  try {
    await writeFile(guard, '', { flag: 'wx', mode: 0o600 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    const info = await stat(guard).catch(() => undefined);
    if (info && Date.now() - info.mtimeMs > STALE_TAKEOVER_GUARD_MS) await rm(guard, { force: true });
    return false;
  }
  try {
    if (await isStale(file, Date.now())) await rm(file, { force: true });
    return true;
  } finally {
    await rm(guard, { force: true });
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
  const mine = JSON.stringify({ pid: process.pid, host: hostname(), nonce: randomUUID() } satisfies LockOwner);
  for (;;) {
    try {
      await writeFile(file, mine, { flag: 'wx', mode: 0o600 });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    if ((await isStale(file, Date.now())) && (await removeStaleLock(file))) continue;
    if (Date.now() > deadline) throw new LoginLockError(`another twokey has been refreshing the login for ${Math.round(waitMs / 1000)}s (${file}); try again`);
    await new Promise((resolve) => setTimeout(resolve, LOCK_POLL_MS));
  }
  try {
    return await work();
  } finally {
    // Only our own lock: had this process stalled past STALE_LOGIN_LOCK_MS (a laptop asleep), another
    // took the lock over, and removing theirs would let a third refresh beside them.
    if ((await readFile(file, 'utf8').catch(() => undefined)) === mine) await rm(file, { force: true });
  }
}
