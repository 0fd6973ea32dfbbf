import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PolicyCache } from '../../../agent/policy/policy-cache';

const doc = (target: string) => ({ targets: [{ name: target, protocol: 'postgres', agent: 'a' }] });

describe('PolicyCache', () => {
  it('keeps the applied policy on disk with mode 0600 and reloads it after a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tk-cache-'));
    const cache = new PolicyCache(dir);
    expect(await cache.apply(3, doc('t3'))).toEqual({ ok: true, value: 'applied' });
    expect(statSync(join(dir, 'policy.json')).mode & 0o777).toBe(0o600);

    const restarted = new PolicyCache(dir);
    expect(await restarted.load()).toBe(true);
    expect(restarted.policy?.version).toBe(3);
    expect(restarted.policy?.document.targets[0]?.name).toBe('t3');
  });

  it('ignores an older version and rejects an invalid document without replacing the current one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tk-cache-'));
    const cache = new PolicyCache(dir);
    await cache.apply(5, doc('five'));
    expect(await cache.apply(4, doc('four'))).toEqual({ ok: true, value: 'stale' });
    const invalid = await cache.apply(6, { targets: 'nope' });
    expect(invalid.ok).toBe(false);
    expect(cache.policy?.version).toBe(5);
    expect(JSON.parse(readFileSync(join(dir, 'policy.json'), 'utf8')).version).toBe(5);
  });
});
