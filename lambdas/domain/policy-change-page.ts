import type { ApprovalRecord } from '../../core/approval/request';
import type { Reviewer } from '../../core/approval/reviewers';
import { escapeHtml, htmlVisible } from '../../core/approval/visible-text';
import { decisionForm, HIDDEN_CHARACTERS_NOTE, layout, requestedBy } from './approval-page';

function diffLineClass(line: string): string | undefined {
  if (line.startsWith('+++ ') || line.startsWith('--- ')) return undefined;
  if (line.startsWith('@@')) return 'hunk';
  if (line.startsWith('+')) return 'add';
  if (line.startsWith('-')) return 'del';
  return undefined;
}

/** The diff, each line escaped (hidden characters shown) and marked as added, removed or a hunk header. */
function diffHtml(diff: string): string {
  return diff
    .split('\n')
    .map((line) => {
      const cls = diffLineClass(line);
      return cls ? `<span class="${cls}">${htmlVisible(line)}</span>` : htmlVisible(line);
    })
    .join('\n');
}

/**
 * The review page of a policy change: who asks and why, the diff against the version it replaces and
 * the whole proposed document whose hash is approved. Applied only while that version is still current.
 */
export function policyChangePage(record: ApprovalRecord, reviewer: Reviewer, token: string): string {
  const change = record.policyChange;
  if (!change) throw new Error('not a policy change');
  const truncated = change.diffTruncated ? '<p><strong>The diff is longer than this page shows; the whole proposed document is below.</strong></p>' : '';
  return layout(
    'Approve a policy change?',
    `<h1>Policy change requested</h1>
${HIDDEN_CHARACTERS_NOTE}
<dl>
${requestedBy(record)}
<dt>Why</dt><dd id="reason">${record.reason ? htmlVisible(record.reason, true) : '<em>no reason given</em>'}</dd>
<dt>Change</dt><dd>version ${change.baseVersion} → ${change.baseVersion + 1}: ${change.added} line(s) added, ${change.removed} removed. It is applied only if version ${change.baseVersion} is still current then.</dd>
<dt>Diff</dt><dd>${truncated}<pre class="diff" id="diff">${diffHtml(change.diff)}</pre></dd>
<dt>Proposed policy</dt><dd><details><summary>the whole document</summary><pre id="proposed">${htmlVisible(record.text, true)}</pre></details></dd>
<dt>Approvals</dt><dd>${Object.values(record.votes).filter((v) => v.decision === 'approve').length} of ${record.approval.min} needed</dd>
<dt>Expires</dt><dd>${escapeHtml(record.expiresAt)}</dd>
<dt>SHA-256</dt><dd><code>${escapeHtml(record.sha256)}</code></dd>
</dl>
${decisionForm(reviewer, token)}`,
  );
}
