import { UsageError } from './args';

const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86400 } as const;

/** `30s`, `30m`, `8h`, `7d` in seconds; anything else is a usage error naming the option. */
export function durationSeconds(text: string, option: string): number {
  const m = /^(\d{1,6})([smhd])$/.exec(text);
  if (!m) throw new UsageError(`${option} takes a duration like 30m, 8h or 1d`);
  return Number(m[1]) * UNIT_SECONDS[m[2] as keyof typeof UNIT_SECONDS];
}
