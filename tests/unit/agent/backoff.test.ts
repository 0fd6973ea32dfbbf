import { RECONNECT_BASE_MS, RECONNECT_CAP_MS, reconnectDelayMs } from '../../../agent/tunnel/backoff';

describe('reconnectDelayMs', () => {
  it('grows exponentially and never exceeds the 30 s cap', () => {
    const max = () => 0.999999;
    expect(reconnectDelayMs(0, max)).toBeLessThan(RECONNECT_BASE_MS);
    expect(reconnectDelayMs(3, max)).toBeLessThan(RECONNECT_BASE_MS * 8);
    expect(reconnectDelayMs(3, max)).toBeGreaterThan(RECONNECT_BASE_MS * 4);
    for (const attempt of [10, 50, 1000]) expect(reconnectDelayMs(attempt, max)).toBeLessThan(RECONNECT_CAP_MS);
  });

  it('jitters across the whole window', () => {
    expect(reconnectDelayMs(5, () => 0)).toBe(0);
    expect(reconnectDelayMs(5, () => 0.5)).toBe(RECONNECT_BASE_MS * 16);
  });
});
