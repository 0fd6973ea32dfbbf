import type { ApprovalRecord } from '../../core/approval/request';
import type { Reviewer } from '../../core/approval/reviewers';
import { escapeHtml, htmlVisible, oneLine, plainVisible, quotedValue } from '../../core/approval/visible-text';
import type { Mail } from './deps';

/** The requester's display name is their own claim: at most this much of it reaches a mail subject. */
export const MAX_NAME_IN_SUBJECT_CHARS = 64;
/** Claims shown on one line in the body (name, email, reason) are cut here. */
export const MAX_CLAIM_IN_BODY_CHARS = 256;
/** Every line of the statement in the text part starts with this, so none can pass for a line of ours. */
const QUOTE = '| ';

/** A URL in requester-written text must not become a second, clickable link next to ours. */
export function disarmLinks(text: string): string {
  return text.replace(/([A-Za-z][A-Za-z0-9+.-]*):\/\//g, '$1[:]//');
}

/** Who asks, as the verified token says: subject and issuer (the identity), then the claims they may edit. */
export function requesterLines(record: ApprovalRecord): string[] {
  const r = record.requester;
  return [
    `Requested by: ${oneLine(r.name, MAX_CLAIM_IN_BODY_CHARS)} (subject ${oneLine(r.subject, MAX_CLAIM_IN_BODY_CHARS)} at ${oneLine(r.issuer, MAX_CLAIM_IN_BODY_CHARS)})`,
    `Verified email: ${r.email ? oneLine(r.email, MAX_CLAIM_IN_BODY_CHARS) : '(none)'}`,
    `Groups: ${r.groups.length ? oneLine(r.groups.join(', '), MAX_CLAIM_IN_BODY_CHARS) : '(none)'}`,
    ...(record.via ? [`Sent by: ${oneLine(disarmLinks(record.via), MAX_CLAIM_IN_BODY_CHARS)}`] : []),
  ];
}

/**
 * The mail to one reviewer. The link and who asks for what come first; the statement (written by the
 * requester) comes last, fenced, every line quoted and its URLs disarmed, with hidden characters shown
 * as `\uXXXX`. The subject carries no control characters (no header injection) and a bounded name.
 */
export function approvalMail(record: ApprovalRecord, reviewer: Reviewer, link: string): Mail {
  const what = `${record.kind === 'window' ? `a ${record.windowMinutes ?? 0}-minute write window` : `a ${record.class}`} on ${record.target}`;
  const subject = `[twokey] ${oneLine(record.requester.name, MAX_NAME_IN_SUBJECT_CHARS)}${record.via ? "'s AI agent" : ''} asks to run ${what}`;
  const body = plainVisible(disarmLinks(record.text), true);
  const params = (record.params ?? []).map((p, i) => `$${i + 1} = ${p === null ? 'NULL' : oneLine(disarmLinks(quotedValue(p)), MAX_CLAIM_IN_BODY_CHARS)}`);
  const text = [
    `Approval requested: ${what} (rule ${oneLine(record.rule, MAX_CLAIM_IN_BODY_CHARS)}), request ${record.requestId}.`,
    '',
    `Review it here (the page shows everything and asks before anything happens):`,
    link,
    '',
    ...requesterLines(record),
    `Reason: ${record.reason ? oneLine(disarmLinks(record.reason), MAX_CLAIM_IN_BODY_CHARS) : '(none given)'}`,
    `Blast radius: ${oneLine(record.blastRadius ?? 'unknown', MAX_CLAIM_IN_BODY_CHARS)}`,
    `Needs: ${record.approval.min} approval(s) from ${record.approval.groups.join(', ')}; expires ${record.expiresAt}`,
    `Sent to: ${reviewer.email} (subject ${reviewer.subject} at ${reviewer.issuer})`,
    '',
    `The ${record.kind === 'script' ? 'script' : 'statement'} as submitted, each line after "${QUOTE}"; links in it are disabled, hidden characters shown as \\uXXXX:`,
    '----- begin -----',
    ...body.split('\n').map((line) => `${QUOTE}${line}`),
    ...params.map((p) => `${QUOTE}${p}`),
    '----- end -----',
  ].join('\n');
  const html = `<p><a href="${escapeHtml(link)}">Review the request</a> (the page asks before anything happens).</p>
<p>${escapeHtml(what)}, rule ${htmlVisible(record.rule)}, request ${escapeHtml(record.requestId)}.</p>
<p>${requesterLines(record).map(escapeHtml).join('<br>')}</p>
<p>Statement as submitted (links disabled; hidden characters highlighted):</p><pre>${htmlVisible(disarmLinks(record.text), true)}</pre>`;
  return { to: reviewer.email, subject, text, html };
}
