import { IDLE_POLL_MAX_MS, pollDelayMs, RING_POLL_MS } from '../../../agent/recording/ring-poll';

describe("the recorder's worker polling the ring", () => {
  it('reads every RING_POLL_MS while reads find records', () => {
    expect(pollDelayMs(0)).toBe(RING_POLL_MS);
  });

  it('doubles the wait after each read that found nothing, up to IDLE_POLL_MAX_MS however long the ring stays empty', () => {
    expect(Array.from({ length: 6 }, (_, i) => pollDelayMs(i))).toEqual([25, 50, 100, 200, 200, 200]);
    for (const n of [9, 100, 2000, Number.MAX_SAFE_INTEGER]) expect(pollDelayMs(n)).toBe(IDLE_POLL_MAX_MS);
  });
});
