import type { ApprovalRecord } from '../../core/approval/request';
import type { Reviewer } from '../../core/approval/reviewers';
import { escapeHtml, htmlVisible, oneLine, plainVisible } from '../../core/approval/visible-text';
import { disarmLinks, MAX_CLAIM_IN_BODY_CHARS, MAX_NAME_IN_SUBJECT_CHARS, requesterLines } from './approval-mail';
import type { Mail } from './deps';

/** Diff lines a mail carries; the review page shows the whole stored diff. */
export const MAX_MAIL_DIFF_LINES = 200;
/** Every diff line in the text part starts with this, so none can pass for a line of ours. */
const QUOTE = '| ';

const versions = (record: ApprovalRecord): string => `version ${record.policyChange?.baseVersion ?? 0} → ${(record.policyChange?.baseVersion ?? 0) + 1}`;

/** The first lines of the diff, links disarmed, with a note of how much more the page shows. */
function mailDiff(record: ApprovalRecord): string[] {
  const change = record.policyChange;
  const lines = disarmLinks(change?.diff ?? '').replace(/\n$/, '').split('\n');
  if (lines.length <= MAX_MAIL_DIFF_LINES && !change?.diffTruncated) return lines;
  return [...lines.slice(0, MAX_MAIL_DIFF_LINES), `… (diff cut short here: ${change?.added ?? 0} line(s) added, ${change?.removed ?? 0} removed in all)`];
}

function body(record: ApprovalRecord, opening: readonly string[]): { text: string; html: string } {
  const diff = mailDiff(record);
  const reason = record.reason ? oneLine(disarmLinks(record.reason), MAX_CLAIM_IN_BODY_CHARS) : '(none given)';
  const text = [
    ...opening,
    '',
    ...requesterLines(record),
    `Reason: ${reason}`,
    '',
    `The change, each line after "${QUOTE}"; links in it are disabled, hidden characters shown as \\uXXXX:`,
    '----- begin -----',
    ...diff.map((line) => `${QUOTE}${plainVisible(line)}`),
    '----- end -----',
  ].join('\n');
  const html = `${opening.map((line) => `<p>${escapeHtml(line)}</p>`).join('')}
<p>${requesterLines(record).map(escapeHtml).join('<br>')}<br>Reason: ${escapeHtml(reason)}</p>
<pre>${diff.map((line) => htmlVisible(line)).join('\n')}</pre>`;
  return { text, html };
}

/** The mail that asks one admin to review a policy change; the link is theirs alone and comes first. */
export function policyChangeMail(record: ApprovalRecord, reviewer: Reviewer, link: string): Mail {
  const { text, html } = body(record, [
    `Policy change requested (${versions(record)}), request ${record.requestId}; expires ${record.expiresAt}.`,
    'Review it here (the page shows the whole change and asks before anything happens):',
    link,
    `Sent to: ${reviewer.email} (subject ${reviewer.subject} at ${reviewer.issuer})`,
  ]);
  return {
    to: reviewer.email,
    subject: `[twokey] ${oneLine(record.requester.name, MAX_NAME_IN_SUBJECT_CHARS)} asks to change the policy (${versions(record)})`,
    text,
    html: `<p><a href="${escapeHtml(link)}">Review the policy change</a> (the page asks before anything happens).</p>\n${html}`,
  };
}

/** The mail every admin and auditor gets when an admin changes the policy without approval. */
export function emergencyNotice(record: ApprovalRecord, to: string): Mail {
  const { text, html } = body(record, [
    `EMERGENCY policy change (${versions(record)}), request ${record.requestId}: applied without a second admin's approval, in effect now.`,
    'If you did not expect it, review the policy (twokey policies get) and the approvals list.',
  ]);
  return { to, subject: `[twokey] EMERGENCY policy change by ${oneLine(record.requester.name, MAX_NAME_IN_SUBJECT_CHARS)} (${versions(record)}), applied without approval`, text, html };
}
