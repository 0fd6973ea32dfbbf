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

/** The request as recorded: the API verb when it was understood, the HTTP method and the path. */
export interface RecordedRequest {
  readonly verb?: string;
  readonly method: string | undefined;
  readonly path: string | undefined;
}

/** One API request in the session's NDJSON recording: verb, method, path, status and latency. */
export function requestEvent(r: RecordedRequest, status: number, startedMs: number, outcome: RequestOutcome): ProtocolEvent {
  return {
    e: 'request',
    ...(r.verb ? { verb: r.verb } : {}),
    method: r.method ?? '',
    path: (r.path ?? '').slice(0, MAX_RECORDED_PATH_CHARS),
    status,
    latencyMs: Math.round((performance.now() - startedMs) * 100) / 100,
    ...(outcome.bytes !== undefined ? { bytes: outcome.bytes } : {}),
    ...(outcome.error ? { error: outcome.error } : {}),
    ...(outcome.summary ? { summary: outcome.summary } : {}),
  };
}
