import type { ApprovalRecord } from '../../core/approval/request';
import type { Reviewer } from '../../core/approval/reviewers';
import { escapeHtml, htmlVisible, quotedValue } from '../../core/approval/visible-text';

const STYLE = `body{font:15px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#111}
pre{background:#f4f4f4;padding:1rem;white-space:pre-wrap;word-break:break-word;border-radius:6px}
dt{font-weight:600}dd{margin:0 0 .6rem}button{font-size:1rem;padding:.5rem 1.2rem;margin-right:.6rem;border-radius:6px;border:1px solid #888;cursor:pointer}
.approve{background:#0a7d32;color:#fff}.deny{background:#b3261e;color:#fff}textarea{width:100%;min-height:4rem}
code.param{white-space:pre-wrap;background:#f4f4f4;padding:0 .2em}mark.hidden-char{background:#ffd54f;color:#000;font-family:monospace;padding:0 .15em;border-radius:3px}.note{color:#555;font-size:.9em}
.diff .add{background:#e6ffec;display:block}.diff .del{background:#ffebe9;display:block}.diff .hunk{color:#555;display:block}`;

export function layout(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><meta name="referrer" content="no-referrer"><title>${escapeHtml(title)}</title><style>${STYLE}</style></head><body>${body}</body></html>`;
}

/** A page that says something went wrong (used, expired, forged link) and changes nothing. */
export function messagePage(title: string, message: string): string {
  return layout(title, `<h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p>`);
}

/** SQL NULL, unquoted and named: text values are shown quoted. */
const SQL_NULL = '<strong>NULL</strong> <span class="note">(SQL null, no value)</span>';

/** When the reviewer's group requires sign-in: who is signed in (if anyone) and where to sign in. */
export interface ReviewSignIn {
  readonly signedInAs: string | undefined;
  readonly url: string;
}

function signInSection(signIn: ReviewSignIn): string {
  return signIn.signedInAs === undefined
    ? `<p id="sign-in">Votes of this reviewer group count only from a signed-in reviewer. <a href="${escapeHtml(signIn.url)}">Sign in to vote</a></p>`
    : `<p id="sign-in">Signed in as <strong>${htmlVisible(signIn.signedInAs)}</strong> (<a href="${escapeHtml(signIn.url)}">sign in as someone else</a>).</p>`;
}

/**
 * The review page: everything the reviewer approves, and a form that only POST submits (once signed
 * in, when the group requires it). Who asks is shown as the token proved it (subject at issuer,
 * groups) next to the claims they can edit (name, email); every requester-written field shows hidden
 * characters as highlighted `\uXXXX`.
 */
export function reviewPage(record: ApprovalRecord, reviewer: Reviewer, token: string, signIn?: ReviewSignIn): string {
  const approvals = Object.values(record.votes).filter((v) => v.decision === 'approve').length;
  const params = record.params?.length
    ? `<dt>Parameters</dt><dd><ol>${record.params.map((p) => `<li>${p === null ? SQL_NULL : `<code class="param">${htmlVisible(quotedValue(p), true)}</code>`}</li>`).join('')}</ol></dd>`
    : '';
  const window = record.kind === 'window' ? `<dt>Write window</dt><dd>${record.windowMinutes ?? 0} minutes</dd>` : '';
  return layout(
    `Approve ${record.class} on ${record.target}?`,
    `<h1>Approval requested</h1>
${HIDDEN_CHARACTERS_NOTE}
<dl>
${requestedBy(record)}
<dt>Target</dt><dd>${htmlVisible(record.target)} (${htmlVisible(record.protocol)})</dd>
<dt>Why</dt><dd id="reason">${record.reason ? htmlVisible(record.reason, true) : '<em>no reason given</em>'}</dd>
<dt>Class</dt><dd>${htmlVisible(record.class)} (rule ${htmlVisible(record.rule)})</dd>
${window}<dt>${record.kind === 'script' ? 'Script' : 'Statement'}</dt><dd><pre id="statement">${htmlVisible(record.text, true)}</pre></dd>
${params}<dt>Blast radius</dt><dd>${htmlVisible(record.blastRadius ?? 'unknown')}</dd>
<dt>Approvals</dt><dd>${approvals} of ${record.approval.min} needed</dd>
<dt>Expires</dt><dd>${escapeHtml(record.expiresAt)}</dd>
<dt>SHA-256</dt><dd><code>${escapeHtml(record.sha256)}</code></dd>
</dl>
${decisionSection(reviewer, token, signIn)}`,
  );
}

export const HIDDEN_CHARACTERS_NOTE = '<p class="note">Characters that would be invisible or reorder text are shown as <mark class="hidden-char">\\uXXXX</mark>.</p>';

/** Who asks, as every review page shows it: the identity the token proved, then the claims they can edit. */
export function requestedBy(record: ApprovalRecord): string {
  const r = record.requester;
  return `<dt>Requested by</dt><dd id="requester">subject <code>${htmlVisible(r.subject)}</code> at <code>${htmlVisible(r.issuer)}</code><br>
name (their own claim): ${htmlVisible(r.name)}<br>verified email: ${r.email ? htmlVisible(r.email) : '<em>none</em>'}<br>
groups: ${r.groups.length ? r.groups.map((g) => `<code>${htmlVisible(g)}</code>`).join(', ') : '<em>none</em>'}</dd>${
    record.via ? `\n<dt>Sent by</dt><dd id="via"><strong>${htmlVisible(record.via)}</strong></dd>` : ''
  }`;
}

/** The decision form, after the sign-in section when the reviewer's group requires one (no form until signed in). */
export function decisionSection(reviewer: Reviewer, token: string, signIn: ReviewSignIn | undefined): string {
  if (!signIn) return decisionForm(reviewer, token);
  return `${signInSection(signIn)}${signIn.signedInAs === undefined ? '' : decisionForm(reviewer, token)}`;
}

/** The decision form: only its POST decides (a GET of the link changes nothing). */
function decisionForm(reviewer: Reviewer, token: string): string {
  return `<form method="post">
<input type="hidden" name="t" value="${escapeHtml(token)}">
<p>Reviewing as <strong>${escapeHtml(reviewer.email)}</strong> (subject <code>${escapeHtml(reviewer.subject)}</code> at <code>${escapeHtml(reviewer.issuer)}</code>).</p>
<label>Comment (optional)<br><textarea name="comment" maxlength="1000"></textarea></label>
<p><button class="approve" type="submit" name="decision" value="approve">Approve</button><button class="deny" type="submit" name="decision" value="deny">Deny</button></p>
</form>`;
}
