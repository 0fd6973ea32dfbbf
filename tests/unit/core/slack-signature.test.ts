import { slackSignature, SLACK_TIMESTAMP_WINDOW_SECONDS, verifySlackRequest } from '../../../core/slack/signature';

const SECRET = '8f742231b10e8888abcd99yyyzzz85a5';
const BODY = 'payload=%7B%22type%22%3A%22block_actions%22%7D';
const NOW_S = 1_800_000_000;

function request(overrides: Partial<{ signature: string | undefined; timestamp: string | undefined; rawBody: string }> = {}) {
  const timestamp = overrides.timestamp ?? String(NOW_S);
  return { signature: slackSignature(SECRET, timestamp, BODY), timestamp, rawBody: BODY, ...overrides };
}

describe('Slack request signatures', () => {
  it('accepts the signature of the exact body within the window', () => {
    expect(verifySlackRequest(request(), SECRET, NOW_S * 1000).ok).toBe(true);
    expect(verifySlackRequest(request({ timestamp: String(NOW_S - SLACK_TIMESTAMP_WINDOW_SECONDS) }), SECRET, NOW_S * 1000).ok).toBe(true);
  });

  it.each([
    ['a changed body', { rawBody: `${BODY}x` }, 'bad-signature'],
    ['another secret', { signature: slackSignature('another-secret-of-32-characters!', String(NOW_S), BODY) }, 'bad-signature'],
    ['a truncated signature', { signature: slackSignature(SECRET, String(NOW_S), BODY).slice(0, 20) }, 'bad-signature'],
    ['no signature', { signature: undefined }, 'missing'],
    ['a timestamp that is not a number', { timestamp: '17e8' }, 'missing'],
  ])('refuses %s', (_what, overrides, reason) => {
    expect(verifySlackRequest(request(overrides), SECRET, NOW_S * 1000)).toEqual({ ok: false, error: reason });
  });

  it('refuses a correctly signed request from outside the timestamp window (a replay), either side', () => {
    const old = request({ timestamp: String(NOW_S - SLACK_TIMESTAMP_WINDOW_SECONDS - 1) });
    const future = request({ timestamp: String(NOW_S + SLACK_TIMESTAMP_WINDOW_SECONDS + 1) });
    expect(verifySlackRequest(old, SECRET, NOW_S * 1000)).toEqual({ ok: false, error: 'stale' });
    expect(verifySlackRequest(future, SECRET, NOW_S * 1000)).toEqual({ ok: false, error: 'stale' });
  });
});
