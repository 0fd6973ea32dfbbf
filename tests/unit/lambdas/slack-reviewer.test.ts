import { parsePolicy } from '../../../core/policy/parse';
import type { PolicyDocument } from '../../../core/policy/schema';
import { reviewerOf } from '../../../lambdas/domain/slack';

const ISSUER = 'https://idp.example.com';
const OTHER = 'https://other-idp.example.com';

function policy(slackUsers: string): PolicyDocument {
  const parsed = parsePolicy(`issuer: ${ISSUER}
reviewers:
  dba: [{ subject: bob, email: bob@example.com }, { subject: carol, email: carol@example.com, issuer: ${OTHER} }]
slack:
  groups: { dba: { channel: C0DBA } }
  users: ${slackUsers}
`);
  if (!parsed.ok) throw new Error(parsed.error.message);
  return parsed.value;
}

/** Slack's users.info as the domain sees it: the address only when Slack says the user confirmed it. */
const slackUsers = (confirmed: Record<string, string>) => ({ confirmedEmail: async (id: string) => confirmed[id] });

describe('which directory reviewer a Slack user is', () => {
  it('maps a Slack user the policy names to that principal (subject at the policy issuer, or its own issuer)', async () => {
    const p = policy(`{ U0ONCALL: bob, U0CAROL: { subject: carol, issuer: "${OTHER}" } }`);
    const none = slackUsers({});
    expect(await reviewerOf(none, p, 'U0ONCALL')).toEqual({ issuer: ISSUER, subject: 'bob' });
    expect(await reviewerOf(none, p, 'U0CAROL')).toEqual({ issuer: OTHER, subject: 'carol' });
  });

  it('maps a confirmed address to the one directory entry that has it, ignoring case', async () => {
    expect(await reviewerOf(slackUsers({ U0B: 'Bob@Example.com' }), policy('{}'), 'U0B')).toEqual({ issuer: ISSUER, subject: 'bob' });
  });

  it('maps nobody for an unconfirmed address, an address outside the directory, or without a policy', async () => {
    expect(await reviewerOf(slackUsers({}), policy('{}'), 'U0EVE')).toBeUndefined();
    expect(await reviewerOf(slackUsers({ U0M: 'mallory@example.com' }), policy('{}'), 'U0M')).toBeUndefined();
    expect(await reviewerOf(slackUsers({ U0B: 'bob@example.com' }), undefined, 'U0B')).toBeUndefined();
  });

  it('refuses a policy that maps a Slack user to someone who is not in the reviewers directory', () => {
    const parsed = parsePolicy(`issuer: ${ISSUER}
reviewers: { dba: [{ subject: bob, email: bob@example.com }] }
slack: { groups: { dba: { channel: C0DBA } }, users: { U0X: mallory, U0Y: { subject: bob, issuer: "${OTHER}" } } }
`);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) {
      expect(parsed.error.message).toContain('subject mallory is not in reviewers');
      expect(parsed.error.message).toContain('subject bob is not in reviewers');
    }
  });
});
