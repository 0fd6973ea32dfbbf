import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { LOGIN_LOCK_FILE, withLoginLock } from '../../../cli/auth/login-lock';

/** Above Linux's pid_max ceiling (2^22): no process has it. */
const DEAD_PID = 2 ** 22 + 1;
const CONTENDERS = 8;
const TRIALS = 20;
const HOLD_MS = 20;

describe('the CLI refresh lock', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'twokey-lock-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('lets one holder at a time take over a lock whose process died, however many find it stale at once', async () => {
    let holders = 0;
    let most = 0;
    const work = async (): Promise<void> => {
      holders += 1;
      most = Math.max(most, holders);
      await new Promise((resolve) => setTimeout(resolve, HOLD_MS));
      holders -= 1;
    };
    // Contenders arrive a few hundred microseconds apart, so that some judge the dead lock stale while others already replaced it.
    const contender = async (i: number): Promise<void> => {
      await new Promise((resolve) => setTimeout(resolve, i % 3));
      await withLoginLock(dir, work, 60_000);
    };
    for (let trial = 0; trial < TRIALS; trial++) {
      writeFileSync(join(dir, LOGIN_LOCK_FILE), JSON.stringify({ pid: DEAD_PID, host: hostname() }), { mode: 0o600 });
      await Promise.all(Array.from({ length: CONTENDERS }, (_, i) => contender(i)));
    }

    expect(most).toBe(1);
    expect(existsSync(join(dir, LOGIN_LOCK_FILE))).toBe(false);
  });
  it("leaves the lock alone when, its holder having stalled, another took it over meanwhile", async () => {
    const theirs = JSON.stringify({ pid: process.pid, host: hostname(), nonce: 'the-next-holder' });
    await withLoginLock(dir, async () => writeFileSync(join(dir, LOGIN_LOCK_FILE), theirs, { mode: 0o600 }));
    expect(readFileSync(join(dir, LOGIN_LOCK_FILE), 'utf8')).toBe(theirs);
  });
});
