import { IdleFlushedMasking } from '../../../agent/sessions/idle-flushed-masking';
import { sessionMasking } from '../../../agent/sessions/session-masking';
import type { PolicyMask } from '../../../core/policy/schema';

const MASKS = [{ name: 'keys', targets: ['box'], subjects: { groups: ['support'] }, detectors: ['aws-access-key-id'] }] as unknown as PolicyMask[];

/** A masked stream with the given quiet before release; `out` is what it emitted so far. */
function stream(idleFlushMs: number): { masked: IdleFlushedMasking; out: () => string } {
  let out = '';
  const masked = new IdleFlushedMasking(sessionMasking(MASKS, undefined).stream(), idleFlushMs, (text) => (out += text));
  return { masked, out: () => out };
}

describe('a masked stream released after a quiet', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('masks a key that arrives a character at a time, each within the quiet, and releases it only after that quiet', async () => {
    const { masked, out } = stream(5_000);
    for (const key of 'echo AKIAIOSFODNN7EXAMPLE') {
      masked.push(key);
      await jest.advanceTimersByTimeAsync(4_999);
    }
    expect(out()).toBe('');
    await jest.advanceTimersByTimeAsync(1);
    expect(out()).toMatch(/^echo \S+$/);
    expect(out()).not.toContain('AKIAIOSFODNN7EXAMPLE');
  });

  it('holds a prompt until the quiet, or releases it at once at flush', async () => {
    const waited = stream(50);
    waited.masked.push('password: ');
    expect(waited.out()).toBe('');
    await jest.advanceTimersByTimeAsync(50);
    expect(waited.out()).toBe('password: ');

    const flushed = stream(50);
    flushed.masked.push('password: ');
    flushed.masked.flush();
    expect(flushed.out()).toBe('password: ');
  });
});
