import { z } from 'zod';

const slackId = z.string().regex(/^[A-Z0-9]{2,32}$/, 'a Slack id such as C0123ABC or U0123ABC');

/**
 * `slack:` in the policy: where each reviewer group's requests are posted (a channel, or each listed
 * user by direct message), and an explicit map of Slack users to reviewers of the directory by
 * principal (otherwise the user's Slack-confirmed email, when exactly one directory entry has it).
 */
export const slackSettingsSchema = z.strictObject({
  groups: z.record(
    z.string().min(1),
    z
      .strictObject({ channel: slackId.optional(), users: z.array(slackId).max(50).optional() })
      .refine((g) => g.channel !== undefined || (g.users?.length ?? 0) > 0, 'name a channel or users'),
  ),
  /** Slack user -> the directory reviewer they are: a subject at the policy's issuer, or `{ subject, issuer }`. */
  users: z
    .record(slackId, z.union([z.string().min(1).max(256), z.strictObject({ subject: z.string().min(1).max(256), issuer: z.string().url().max(1024).optional() })]))
    .default({}),
});

export type SlackSettings = z.infer<typeof slackSettingsSchema>;
