import { WebClient } from '@slack/web-api';
import type { SlackApi } from '../domain/deps';

/** Slack answers within seconds; a press must be acknowledged within 3 s, so calls are bounded. */
export const SLACK_API_TIMEOUT_MS = 2_500;

/** The Web API through Slack's SDK; the bot token is read (once) when the first call needs it. */
export function slackWebApi(botToken: () => Promise<string>, slackApiUrl: string | undefined): SlackApi {
  let client: Promise<WebClient> | undefined;
  const web = (): Promise<WebClient> => {
    client ??= botToken().then((token) => new WebClient(token, { slackApiUrl, timeout: SLACK_API_TIMEOUT_MS, retryConfig: { retries: 1 } }));
    return client.catch((e: unknown) => {
      client = undefined;
      throw e;
    });
  };
  return {
    async postMessage(channel, message) {
      const out = await (await web()).chat.postMessage({ channel, text: message.text, blocks: [...message.blocks] as never });
      return { channel: String(out.channel), ts: String(out.ts) };
    },
    async updateMessage(channel, ts, message) {
      await (await web()).chat.update({ channel, ts, text: message.text, blocks: [...message.blocks] as never });
    },
    async tellUser(channel, user, text) {
      await (await web()).chat.postEphemeral({ channel, user, text });
    },
    async confirmedEmail(userId) {
      const out = await (await web()).users.info({ user: userId });
      const user = out.user as { is_email_confirmed?: boolean; profile?: { email?: string } } | undefined;
      return user?.is_email_confirmed === true ? user.profile?.email : undefined;
    },
  };
}
