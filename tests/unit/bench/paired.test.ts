import { offFirst, pairedOverhead } from '../../../bench/paired';

describe('paired overhead (bench:pg)', () => {
  it('is the median of each pair’s own overhead, with the middle half as spread', () => {
    // Pair overheads: 10%, 0%, 20%, 5%, -10%: sorted -10, 0, 5, 10, 20.
    const r = pairedOverhead([100, 200, 100, 1000, 100], [90, 200, 80, 950, 110]);
    expect(r?.median).toBeCloseTo(0.05);
    expect(r?.q1).toBeCloseTo(0);
    expect(r?.q3).toBeCloseTo(0.1);
  });

  it('follows the pairs, not the medians of each side apart', () => {
    // Drift: every pair loses 4% while the machine slows from pair to pair.
    const off = [1000, 900, 800, 700];
    const on = off.map((t) => t * 0.96);
    expect(pairedOverhead(off, on)?.median).toBeCloseTo(0.04);
  });

  it('interpolates between ranks and pairs only what both sides ran', () => {
    const r = pairedOverhead([100, 100, 100], [90, 80]);
    expect(r?.median).toBeCloseTo(0.15);
    expect(r?.q1).toBeCloseTo(0.125);
    expect(r?.q3).toBeCloseTo(0.175);
    expect(pairedOverhead([], [1])).toBeUndefined();
  });

  it('alternates which side a round runs first', () => {
    expect([0, 1, 2, 3].map(offFirst)).toEqual([true, false, true, false]);
  });
});
