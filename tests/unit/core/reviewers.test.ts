import { reviewersFor } from '../../../core/approval/reviewers';
import type { Requester } from '../../../core/approval/request';
import { parsePolicy } from '../../../core/policy/parse';
import { TEST_ISSUER } from '../../support/identities';

const directory = (() => {
  const parsed = parsePolicy(`
issuer: ${TEST_ISSUER}
reviewers:
  dba:
    - { subject: 00u-bob, email: bob@example.com }
    - { subject: 00u-carol, email: carol@example.com }
  sec:
    - { subject: 00u-bob, email: bob@example.com }
    - { subject: 00u-sam, email: sam@example.com, issuer: https://partner.test }
`);
  if (!parsed.ok) throw parsed.error;
  return parsed.value;
})();

const requester = (subject: string, groups: string[], email?: string, issuer = TEST_ISSUER): Requester => ({ issuer, subject, name: subject, email, groups });
const mailboxes = (r: ReturnType<typeof reviewersFor>): string[] => (r.ok ? r.value.map((v) => v.email) : [r.error.code]);

describe('reviewersFor', () => {
  it('leaves out a requester with an opaque subject and no email claim, by principal', () => {
    expect(mailboxes(reviewersFor(directory, ['dba'], 1, requester('00u-bob', ['dba'])))).toEqual(['carol@example.com']);
  });

  it('leaves out every mailbox that is the requester\'s, even under another principal', () => {
    expect(mailboxes(reviewersFor(directory, ['dba'], 1, requester('u-77', [], 'Carol@Example.com')))).toEqual(['bob@example.com']);
  });

  it('refuses a requester in an approver group who has no entry of their own', () => {
    const refused = reviewersFor(directory, ['dba'], 1, requester('bob-alias', ['dba']));
    expect(refused).toMatchObject({ ok: false, error: { code: 'requester-not-in-directory' } });
    expect(!refused.ok && refused.error.message).toMatch(/approver group dba.*subject bob-alias at https:\/\/issuer\.test/);
  });

  it('treats the same subject at another issuer as another person', () => {
    expect(mailboxes(reviewersFor(directory, ['dba'], 1, requester('00u-bob', [], undefined, 'https://other.test')))).toEqual(['bob@example.com', 'carol@example.com']);
  });

  it('resolves an entry to its own issuer, and gives one link per principal across groups', () => {
    const result = reviewersFor(directory, ['dba', 'sec'], 1, requester('alice', ['support']));
    expect(result.ok && result.value).toEqual([
      { issuer: TEST_ISSUER, subject: '00u-bob', email: 'bob@example.com' },
      { issuer: TEST_ISSUER, subject: '00u-carol', email: 'carol@example.com' },
      { issuer: 'https://partner.test', subject: '00u-sam', email: 'sam@example.com' },
    ]);
  });

  it('refuses when fewer reviewers than needed are left once the requester is out', () => {
    expect(mailboxes(reviewersFor(directory, ['dba'], 2, requester('00u-carol', ['dba'])))).toEqual(['not-enough-reviewers']);
    expect(mailboxes(reviewersFor(directory, ['dba'], 2, requester('alice', ['support'])))).toEqual(['bob@example.com', 'carol@example.com']);
  });
});
