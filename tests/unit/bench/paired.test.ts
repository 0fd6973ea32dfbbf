import { medianInterval, offFirst, pairedOverhead } from '../../../bench/paired';

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

  it("bounds the median by the order statistics the binomial allows", () => {
    const ten = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    // P(at most 1 of 10 below the median) = 11/1024 <= 2.5% < P(at most 2) = 56/1024.
    expect(medianInterval(ten, 0.95)).toEqual([2, 9]);
    // Twenty: P(at most 5 below) = 2.07% <= 2.5% < P(at most 6) = 5.77%.
    expect(medianInterval(Array.from({ length: 20 }, (_, i) => i + 1), 0.95)).toEqual([6, 15]);
    // Five pairs cannot give 95%: even the extremes leave 2 * 1/32 outside.
    expect(medianInterval([1, 2, 3, 4, 5], 0.95)).toBeUndefined();
    expect(pairedOverhead([100, 100, 100, 100, 100, 100], [99, 98, 97, 96, 95, 94])?.interval).toEqual([expect.closeTo(0.01), expect.closeTo(0.06)]);
  });
});
