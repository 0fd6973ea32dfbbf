import { quantile } from './stats';

/**
 * The overhead of one setting against another from cells run in pairs, each pair close in time: the
 * median of the pairs' own overheads, with the middle half of them as its spread. Cells of one build
 * here differ by ±10% from one to the next (the machine's scheduling, its neighbours): a pair shares
 * its minute's conditions, which medians taken of each side apart do not.
 */
export interface PairedOverhead {
  /** Median over pairs of (off − on) / off, as a fraction. */
  readonly median: number;
  /** The pairs' 25th and 75th percentiles of the same. */
  readonly q1: number;
  readonly q3: number;
  /** A distribution-free interval holding the true median with at least CONFIDENCE (none for under six pairs). */
  readonly interval: readonly [number, number] | undefined;
}

export const CONFIDENCE = 0.95;

export function pairedOverhead(off: readonly number[], on: readonly number[]): PairedOverhead | undefined {
  const pairs = Math.min(off.length, on.length);
  if (pairs === 0) return undefined;
  const overheads = Array.from({ length: pairs }, (_, i) => ((off[i] as number) - (on[i] as number)) / (off[i] as number)).sort((a, b) => a - b);
  return { median: quantile(overheads, 0.5), q1: quantile(overheads, 0.25), q3: quantile(overheads, 0.75), interval: medianInterval(overheads, CONFIDENCE) };
}

/**
 * The order statistics bounding a sample's median with the given confidence: each value falls below
 * the true median with probability 1/2, so the count below it is binomial(n, 1/2); k values are cut
 * from each end while both tails stay within (1 - confidence) / 2.
 */
export function medianInterval(sorted: readonly number[], confidence: number): readonly [number, number] | undefined {
  const n = sorted.length;
  const tail = (1 - confidence) / 2;
  let term = 0.5 ** n; // P(count = 0)
  let below = term; // P(count <= k)
  let k = 0;
  while (below <= tail) {
    k++;
    term = (term * (n - k + 1)) / k;
    below += term;
  }
  return k === 0 ? undefined : [sorted[k - 1] as number, sorted[n - k] as number];
}

/**
 * Which side a round runs first: off-on, then on-off (ABBA), so that a trend over the run (the
 * machine warming, growing tables) moves both sides alike instead of always favouring the second.
 */
export const offFirst = (round: number): boolean => round % 2 === 0;
