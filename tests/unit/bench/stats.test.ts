import { median, percentile } from '../../../bench/stats';

describe('benchmark statistics', () => {
  it('takes the middle value of an odd sample and the mean of the middle two of an even one, in any order', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });

  it('reports nearest-rank percentiles: a value that was measured', () => {
    const ms = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
    expect(percentile(ms, 50)).toBe(5);
    expect(percentile(ms, 95)).toBe(10);
    expect(percentile([], 95)).toBeNaN();
  });
});
