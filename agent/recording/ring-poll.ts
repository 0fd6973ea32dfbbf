/**
 * How often the Postgres recorder's worker reads the ring (see pg-recording-worker.ts).
 *
 * Each read wakes the worker and brings its code and sessions back into the CPU's caches, a cost per
 * read rather than per event, so reads are spaced: events reach the spool within SPOOL_FLUSH_MS
 * anyway, and the ring holds far more than this long's events. A read that found nothing doubles the
 * wait before the next, up to IDLE_POLL_MAX_MS (idle sessions, or none).
 */
export const RING_POLL_MS = 25;
export const IDLE_POLL_MAX_MS = 200;
/** Enough doublings of RING_POLL_MS to pass IDLE_POLL_MAX_MS (the exponent stays small). */
const MAX_DOUBLINGS = 8;

/** The wait before the next read, after `emptyReads` reads in a row found nothing. */
export const pollDelayMs = (emptyReads: number): number => Math.min(IDLE_POLL_MAX_MS, RING_POLL_MS * 2 ** Math.min(emptyReads, MAX_DOUBLINGS));
