import type { ProtocolEvent } from '../recording/session-recorder';

/** What a request's recording says beyond method, path and status. */
export interface RequestOutcome {
  readonly bytes?: number;
  readonly error?: string;
  /** A masked summary of the body (never its values: a refusal's text, `masked`, a held write's review). */
  readonly summary?: string;
}

/** Longest path recorded (a longer one is cut; the full path is refused earlier anyway). */
export const MAX_RECORDED_PATH_CHARS = 2048;

/** One API request in the session's NDJSON recording: verb (the HTTP method), path, status and latency. */
export function requestEvent(method: string | undefined, path: string | undefined, status: number, startedMs: number, outcome: RequestOutcome): ProtocolEvent {
  return {
    e: 'request',
    method: method ?? '',
    path: (path ?? '').slice(0, MAX_RECORDED_PATH_CHARS),
    status,
    latencyMs: Math.round((performance.now() - startedMs) * 100) / 100,
    ...(outcome.bytes !== undefined ? { bytes: outcome.bytes } : {}),
    ...(outcome.error ? { error: outcome.error } : {}),
    ...(outcome.summary ? { summary: outcome.summary } : {}),
  };
}
