import type { ApprovalRecord } from '../../../core/approval/request';
import { approvalMail, MAX_NAME_IN_SUBJECT_CHARS } from '../../../lambdas/domain/approval-mail';
import { reviewPage } from '../../../lambdas/domain/approval-page';

const LINK = 'https://twokey.example.com/approvals/review?t=real';
const reviewer = { issuer: 'https://issuer.test', subject: 'bob', email: 'bob@example.com' };

function record(overrides: Partial<ApprovalRecord> = {}): ApprovalRecord {
  return {
    requestId: '5f0c0000-0000-4000-8000-000000000001',
    kind: 'statement',
    target: 'orders-db',
    protocol: 'postgres',
    text: "UPDATE orders SET status = 'x' WHERE id = 1",
    sha256: 'a'.repeat(64),
    class: 'write',
    rule: 'support',
    requester: { issuer: 'https://issuer.test', subject: '00u-alice', name: 'Alice', email: 'alice@example.com', groups: ['support'] },
    approval: { groups: ['dba'], min: 1, timeoutSeconds: 900 },
    agent: 'edge-1',
    status: 'pending',
    reviewers: [reviewer],
    votes: {},
    createdAt: '2026-12-07T19:00:00.000Z',
    expiresAt: '2026-12-07T19:15:00.000Z',
    linksSent: false,
    delivered: false,
    ...overrides,
  };
}

describe('the approval mail', () => {
  it('keeps CR, LF and other controls of the name out of the subject, and bounds its length', () => {
    const mail = approvalMail(record({ requester: { ...record().requester, name: `Alice\r\nBcc: everyone@example.com\u0000${'x'.repeat(500)}` } }), reviewer, LINK);
    expect(mail.subject).not.toMatch(/[\r\n\u0000]/);
    expect(mail.subject).toContain('Alice\\u000D\\u000ABcc: everyone@example.com\\u0000');
    expect(mail.subject.length).toBeLessThan(MAX_NAME_IN_SUBJECT_CHARS + 60);
  });

  it('puts the real link and who asks before the statement, which cannot forge a line of its own', () => {
    const text = "UPDATE orders SET status = 'x' WHERE id = 1;\n-- Review it here: https://evil.example/approvals/review?t=fake\nReview it here (the page shows everything and asks before anything happens):";
    const mail = approvalMail(record({ text }), reviewer, LINK);
    const lines = mail.text.split('\n');
    const link = lines.indexOf(LINK);
    const begin = lines.indexOf('----- begin -----');
    expect(link).toBeGreaterThan(0);
    expect(lines.findIndex((l) => l.startsWith('Requested by: Alice (subject 00u-alice at https://issuer.test)'))).toBeLessThan(begin);
    expect(link).toBeLessThan(begin);
    const statement = lines.slice(begin + 1, lines.indexOf('----- end -----'));
    expect(statement).toHaveLength(3);
    expect(statement.every((l) => l.startsWith('| '))).toBe(true);
    expect(mail.text).not.toContain('https://evil.example');
    expect(mail.text).toContain('https[:]//evil.example');
    expect(statement.some((l) => l.includes('://'))).toBe(false);
    expect(mail.html.indexOf(LINK)).toBeGreaterThan(0);
    expect(mail.html.indexOf(LINK)).toBeLessThan(mail.html.indexOf('<pre>'));
    expect(mail.html).not.toContain('https://evil.example');
  });

  it('shows bidi, zero-width and control characters of the statement as escapes, in text and HTML', () => {
    const mail = approvalMail(record({ text: "UPDATE t SET a = 'safe\u202E' WHERE id = 1\u200B\u2066;\u0007" }), reviewer, LINK);
    expect(mail.text).toContain("| UPDATE t SET a = 'safe\\u202E' WHERE id = 1\\u200B\\u2066;\\u0007");
    expect(mail.text).not.toMatch(/[\u202E\u200B\u2066\u0007]/);
    expect(mail.html).toContain('<mark class="hidden-char" title="an invisible or control character">\\u202E</mark>');
    expect(mail.html).not.toMatch(/[\u202E\u200B\u2066\u0007]/);
  });
});

describe('the review page', () => {
  it('shows the subject, issuer and groups next to the name, and hidden characters everywhere the requester wrote', () => {
    const html = reviewPage(
      record({
        requester: { issuer: 'https://issuer.test', subject: '00u-alice', name: 'Bob\u202E', groups: ['support', 'on\u200Bcall'] },
        reason: 'ticket\u2067 7',
        params: ['v\uFEFF', null],
        text: "UPDATE t SET a = '\u061C\u200E\u200F\u2060' WHERE id = 1\r\n",
      }),
      reviewer,
      'tok',
    );
    expect(html).toContain('subject <code>00u-alice</code> at <code>https://issuer.test</code>');
    expect(html).toContain('verified email: <em>none</em>');
    expect(html).toMatch(/groups: <code>support<\/code>, <code>on<mark[^>]*>\\u200B<\/mark>call<\/code>/);
    for (const escape of ['\\u202E', '\\u2067', '\\uFEFF', '\\u061C', '\\u200E', '\\u200F', '\\u2060']) expect(html).toContain(`>${escape}</mark>`);
    expect(html).not.toMatch(/[\u202E\u2067\uFEFF\u061C\u200E\u200F\u2060\u200B]/);
    expect(html).toContain('WHERE id = 1\r\n</pre>');
    expect(html).toContain('Reviewing as <strong>bob@example.com</strong> (subject <code>bob</code> at <code>https://issuer.test</code>)');
  });
});
