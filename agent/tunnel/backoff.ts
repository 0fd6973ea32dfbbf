export const RECONNECT_BASE_MS = 250;
export const RECONNECT_CAP_MS = 30_000;

/** Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff and Jitter"), capped. */
export function reconnectDelayMs(attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(RECONNECT_CAP_MS, RECONNECT_BASE_MS * 2 ** Math.min(attempt, 20));
  return Math.floor(random() * ceiling);
}
