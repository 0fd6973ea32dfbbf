import { handleSlackInteraction } from './domain/slack';
import { bodyText, header, httpRoute } from './shared/http';
import { getRuntime } from './shared/runtime';

/** POST /slack/interactions: Slack's interactivity request URL (button presses), authenticated by Slack's signature. */
export const interactions = httpRoute('slack', getRuntime, async (event, rt) => {
  await handleSlackInteraction(rt.deps, {
    signature: header(event, 'x-slack-signature'),
    timestamp: header(event, 'x-slack-request-timestamp'),
    rawBody: bodyText(event),
  });
  return { statusCode: 200, headers: { 'cache-control': 'no-store' }, body: '' };
});
