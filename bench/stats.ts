/** Order statistics the benchmarks report. */

/** Linear interpolation between the closest ranks of an ascending sample (the usual definition); NaN when empty. */
export function quantile(sorted: readonly number[], p: number): number {
  const at = (sorted.length - 1) * p;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return (sorted[lo] as number) + ((sorted[hi] as number) - (sorted[lo] as number)) * (at - lo);
}

/** The middle value, or the mean of the middle two; NaN when empty. */
export const median = (values: readonly number[]): number => quantile([...values].sort((a, b) => a - b), 0.5);

/** The nearest-rank percentile (`p` from 0 to 100: a value that was measured, as latency tables show); NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}
