import { RecentPolicy } from '../../../lambdas/store/recent-policy';
import type { PolicyRecord } from '../../../lambdas/store/stores';

const MAX_AGE_MS = 5_000;
const version = (n: number): PolicyRecord => ({ version: n, source: `# v${n}`, updatedAt: '2026-11-30T00:00:00.000Z', updatedBy: 'root' });

/** The policy table behind the cache: its current version, its reads counted, a read failing on demand. */
function table() {
  const t = { current: version(1), reads: 0, failNext: false };
  const store = {
    latest: async (): Promise<PolicyRecord | undefined> => {
      t.reads++;
      if (t.failNext) {
        t.failNext = false;
        throw new Error('throttled');
      }
      return t.current;
    },
  };
  return { t, store };
}

describe('the recent policy (session starts)', () => {
  it('answers from the last read while it is younger than the age, then reads the table again', async () => {
    const { t, store } = table();
    let now = 1_000_000;
    const recent = new RecentPolicy(store, () => now, MAX_AGE_MS);
    expect(await recent.latest()).toEqual(version(1));
    t.current = version(2);
    now += MAX_AGE_MS - 1;
    expect(await recent.latest()).toEqual(version(1));
    expect(t.reads).toBe(1);
    now += 1;
    expect(await recent.latest()).toEqual(version(2));
    expect(t.reads).toBe(2);
  });

  it('gives callers at once one read', async () => {
    const { t, store } = table();
    const recent = new RecentPolicy(store, () => 0, MAX_AGE_MS);
    const answers = await Promise.all([recent.latest(), recent.latest(), recent.latest()]);
    expect(answers).toEqual([version(1), version(1), version(1)]);
    expect(t.reads).toBe(1);
  });

  it('keeps no failed read: the caller sees the error, the next call reads again', async () => {
    const { t, store } = table();
    const recent = new RecentPolicy(store, () => 0, MAX_AGE_MS);
    t.failNext = true;
    await expect(recent.latest()).rejects.toThrow('throttled');
    expect(await recent.latest()).toEqual(version(1));
    expect(t.reads).toBe(2);
  });

  it('reads again when the clock went back', async () => {
    const { t, store } = table();
    let now = 1_000_000;
    const recent = new RecentPolicy(store, () => now, MAX_AGE_MS);
    await recent.latest();
    t.current = version(2);
    now -= 1;
    expect(await recent.latest()).toEqual(version(2));
    expect(t.reads).toBe(2);
  });
});
