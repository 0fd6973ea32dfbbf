import { PassThrough } from 'node:stream';
import type { PolicyMask } from '../../../core/policy/schema';
import { LIVE_IDLE_FLUSH_MS } from '../../../agent/sessions/idle-flushed-masking';
import { relayOutput } from '../../../agent/ssh/output-relay';
import { sessionMasking } from '../../../agent/sessions/session-masking';

const MASKS = [{ name: 'secrets', targets: ['box'], subjects: { groups: ['support'] }, detectors: ['aws-access-key-id', 'email'] }] as unknown as PolicyMask[];

/** An upstream stream relayed to a caller under masking; `sent` is what the caller got so far. */
function relay(): { from: PassThrough; sent: () => string; finish: () => void } {
  const from = new PassThrough();
  const to = new PassThrough();
  let out = '';
  to.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const relayed = relayOutput(from, to, sessionMasking(MASKS, undefined), () => undefined);
  return { from, sent: () => out, finish: () => relayed.finish() };
}

describe('SSH output relayed under masking', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('masks a secret split across packets that come within the idle flush of each other', async () => {
    const r = relay();
    r.from.write('key AKIAIOSF');
    await jest.advanceTimersByTimeAsync(LIVE_IDLE_FLUSH_MS - 10);
    expect(r.sent()).not.toContain('AKIAIOSF');
    r.from.write('ODNN7EXAMPLE mail ann@exa');
    await jest.advanceTimersByTimeAsync(5);
    r.from.write('mple.com\n');
    r.finish();
    await jest.advanceTimersByTimeAsync(0);
    expect(r.sent()).toMatch(/^key \S+ mail \S+\n$/);
    expect(r.sent()).not.toContain('AKIAIOSFODNN7EXAMPLE');
    expect(r.sent()).not.toContain('ann@example.com');
  });

  it('sends what it held back once the output has been quiet for the idle flush (an interactive prompt shows)', async () => {
    const r = relay();
    r.from.write('password for ann: ');
    await jest.advanceTimersByTimeAsync(LIVE_IDLE_FLUSH_MS + 1);
    expect(r.sent()).toBe('password for ann: ');
  });
});
