import type { ApprovalRecord } from '../../../core/approval/request';
import { policyChangeMail, MAX_MAIL_DIFF_LINES } from '../../../lambdas/domain/policy-change-notices';
import { policyChangePage } from '../../../lambdas/domain/policy-change-page';

const GRACE = { issuer: 'https://issuer.test', subject: 'grace', email: 'grace@example.com' };

function change(diff: string, text = 'rules: []\n'): ApprovalRecord {
  return {
    requestId: '5f0c0000-0000-4000-8000-000000000001',
    kind: 'policy-change',
    target: 'policy',
    protocol: 'policy',
    text,
    sha256: 'a'.repeat(64),
    class: 'admin',
    rule: 'policy-change',
    requester: { issuer: 'https://issuer.test', subject: 'root', name: 'root', email: 'root@example.com', groups: ['admin'] },
    reason: 'OPS-1 <b>now</b>',
    approval: { groups: ['admin'], min: 1, timeoutSeconds: 86_400 },
    agent: '(control plane)',
    status: 'pending',
    reviewers: [GRACE],
    votes: {},
    createdAt: '2026-12-07T00:00:00.000Z',
    expiresAt: '2026-12-08T00:00:00.000Z',
    linksSent: false,
    delivered: false,
    policyChange: { baseVersion: 3, diff, diffTruncated: false, added: 1, removed: 1 },
  };
}

describe('the policy change review page and mail', () => {
  it('escapes the proposal, the diff and the reason, and marks added and removed lines', () => {
    const diff = '--- policy version 3\n+++ proposed\n@@ -1 +1 @@\n-rules: []\n+# <script>alert(1)</script>\n';
    const html = policyChangePage(change(diff, '# <script>alert(1)</script>\n'), GRACE, 'tok"en');

    expect(html).not.toContain('<script>');
    expect(html).toContain('<span class="add">+# &#60;script&#62;alert(1)&#60;/script&#62;</span>');
    expect(html).toContain('<span class="del">-rules: []</span>');
    expect(html).toContain('<span class="hunk">@@ -1 +1 @@</span>');
    expect(html).toContain('OPS-1 &#60;b&#62;now&#60;/b&#62;');
    expect(html).toContain('version 3 → 4');
    expect(html).toContain('value="tok&#34;en"');
    expect(html).toContain('<form method="post">');
  });

  it('cuts a long diff short in the mail and says how much it left out', () => {
    const lines = Array.from({ length: MAX_MAIL_DIFF_LINES + 50 }, (_, i) => `+line ${i}`).join('\n');

    const mail = policyChangeMail(change(`--- a\n+++ b\n@@ -0,0 +1,250 @@\n${lines}\n`), GRACE, 'http://x/approvals/review?t=abc');

    expect(mail.text).toContain(`+line ${MAX_MAIL_DIFF_LINES - 4}`);
    expect(mail.text).not.toContain(`+line ${MAX_MAIL_DIFF_LINES}\n`);
    expect(mail.text).toContain('diff cut short here: 1 line(s) added, 1 removed in all');
    expect(mail.text).toContain('request 5f0c0000-0000-4000-8000-000000000001');
    expect(mail.text.indexOf('http://x/approvals/review?t=abc')).toBeLessThan(mail.text.indexOf('----- begin -----'));
  });
});
