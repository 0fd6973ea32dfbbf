import { createHmac, timingSafeEqual } from 'node:crypto';
import { err, ok, type Result } from '../result';

/** Slack's own guidance: refuse requests whose timestamp is more than five minutes off (replays). */
export const SLACK_TIMESTAMP_WINDOW_SECONDS = 300;
export const SLACK_SIGNATURE_VERSION = 'v0';

export type SlackSignatureRejection = 'missing' | 'stale' | 'bad-signature';

/** `v0=` + hex HMAC-SHA256 of `v0:<timestamp>:<raw body>` under the app's signing secret. */
export function slackSignature(signingSecret: string, timestamp: string, rawBody: string): string {
  const mac = createHmac('sha256', signingSecret).update(`${SLACK_SIGNATURE_VERSION}:${timestamp}:${rawBody}`).digest('hex');
  return `${SLACK_SIGNATURE_VERSION}=${mac}`;
}

/** Verifies X-Slack-Signature over the exact raw body, and X-Slack-Request-Timestamp within the window. */
export function verifySlackRequest(
  request: { signature: string | undefined; timestamp: string | undefined; rawBody: string },
  signingSecret: string,
  nowMs: number,
): Result<void, SlackSignatureRejection> {
  const { signature, timestamp } = request;
  if (!signature || !timestamp || !/^\d{1,12}$/.test(timestamp)) return err('missing');
  if (Math.abs(nowMs / 1000 - Number(timestamp)) > SLACK_TIMESTAMP_WINDOW_SECONDS) return err('stale');
  const expected = Buffer.from(slackSignature(signingSecret, timestamp, request.rawBody));
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return err('bad-signature');
  return ok(undefined);
}
