import type { ApprovalRecord } from '../../core/approval/request';
import { escapeHtml } from './approval-page';
import type { Mail } from './deps';

/** Diff lines a mail carries; the review page shows the whole stored diff. */
export const MAX_MAIL_DIFF_LINES = 200;

const requesterOf = (record: ApprovalRecord): string => `${record.requester.name} <${record.requester.email ?? record.requester.subject}>`;
const versions = (record: ApprovalRecord): string => `version ${record.policyChange?.baseVersion ?? 0} → ${(record.policyChange?.baseVersion ?? 0) + 1}`;

/** The first lines of the diff for a mail, with a note of how many more the page shows. */
function mailDiff(record: ApprovalRecord): string {
  const lines = (record.policyChange?.diff ?? '').replace(/\n$/, '').split('\n');
  if (lines.length <= MAX_MAIL_DIFF_LINES && !record.policyChange?.diffTruncated) return lines.join('\n');
  return [...lines.slice(0, MAX_MAIL_DIFF_LINES), `… (diff cut short here: ${record.policyChange?.added ?? 0} line(s) added, ${record.policyChange?.removed ?? 0} removed in all)`].join('\n');
}

/** The mail that asks one admin to review a policy change; the link is theirs alone. */
export function policyChangeMail(record: ApprovalRecord, reviewer: string, link: string): Mail {
  const diff = mailDiff(record);
  return {
    to: reviewer,
    subject: `[twokey] ${record.requester.name} asks to change the policy (${versions(record)})`,
    text: [
      `${requesterOf(record)} asks to change the twokey policy (${versions(record)}).`,
      `Request: ${record.requestId}`,
      `Reason: ${record.reason ?? '(none given)'}`,
      '',
      diff,
      '',
      `Expires: ${record.expiresAt}`,
      '',
      `Review it (the page asks before anything happens): ${link}`,
    ].join('\n'),
    html: `<p>${escapeHtml(requesterOf(record))} asks to change the twokey policy (${escapeHtml(versions(record))}), request ${escapeHtml(record.requestId)}.</p><pre>${escapeHtml(diff)}</pre><p><a href="${escapeHtml(link)}">Review the change</a> (expires ${escapeHtml(record.expiresAt)}).</p>`,
  };
}

/** The mail every admin and auditor gets when an admin changes the policy without approval. */
export function emergencyNotice(record: ApprovalRecord, to: string): Mail {
  const diff = mailDiff(record);
  const reason = record.policyChange?.emergencyReason ?? '';
  return {
    to,
    subject: `[twokey] EMERGENCY policy change by ${record.requester.name} (${versions(record)}), applied without approval`,
    text: [
      `${requesterOf(record)} changed the twokey policy without a second admin's approval (${versions(record)}).`,
      `Request: ${record.requestId}`,
      `Reason given: ${reason}`,
      '',
      diff,
      '',
      'It is in effect now. If you did not expect it, review the policy (twokey policies get) and the approvals list.',
    ].join('\n'),
    html: `<p><strong>${escapeHtml(requesterOf(record))} changed the twokey policy without a second admin's approval</strong> (${escapeHtml(versions(record))}), request ${escapeHtml(record.requestId)}.</p><p>Reason given: ${escapeHtml(reason)}</p><pre>${escapeHtml(diff)}</pre><p>It is in effect now.</p>`,
  };
}
