import type { ServerResponse } from 'node:http';

/**
 * The reasons of metav1.Status this agent answers with (the API conventions' StatusReason values),
 * each with its HTTP code. kubectl prints a Status's `message`, so the caller reads twokey's words.
 */
export const STATUS_REASONS = {
  BadRequest: 400,
  Unauthorized: 401,
  Forbidden: 403,
  NotFound: 404,
  RequestEntityTooLarge: 413,
  UnsupportedMediaType: 415,
  TooManyRequests: 429,
  InternalError: 500,
  ServiceUnavailable: 503,
  Timeout: 504,
} as const;

export type StatusReason = keyof typeof STATUS_REASONS;

/** A metav1.Status failure as the API server sends it (kind Status, apiVersion v1). */
export interface KubeStatus {
  readonly kind: 'Status';
  readonly apiVersion: 'v1';
  readonly metadata: Record<string, never>;
  readonly status: 'Failure';
  readonly message: string;
  readonly reason: StatusReason;
  readonly code: number;
}

/** A refusal of twokey's own: the message always starts `twokey:` so that callers know who refused. */
export function kubeStatus(reason: StatusReason, message: string): KubeStatus {
  const text = message.startsWith('twokey:') ? message : `twokey: ${message}`;
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: text, reason, code: STATUS_REASONS[reason] };
}

/** Sends a Status failure, unless the response has started (then the connection is cut: a half answer must not pass as whole). */
export function sendStatus(res: ServerResponse, reason: StatusReason, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(kubeStatus(reason, message));
  res.writeHead(STATUS_REASONS[reason], { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}
