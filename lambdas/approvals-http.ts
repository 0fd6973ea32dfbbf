import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { listApprovals, reviewLinkPage, voteFromLink, type PageResult } from './domain/approvals';
import { bodyText, httpRoute, json, pageParams, requireCaller, type HttpResult } from './shared/http';
import { getRuntime } from './shared/runtime';

/** The review page is served to any browser: lock it down (no scripts, no framing, no referrer). */
const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
};

const page = (result: PageResult): HttpResult => ({ statusCode: result.status, headers: PAGE_HEADERS, body: result.html });

function form(event: APIGatewayProxyEventV2): URLSearchParams {
  return new URLSearchParams(bodyText(event));
}

/** GET /approvals/review?t=...: shows the request and a form. Changes nothing. */
export const review = httpRoute('approvals', getRuntime, async (event, rt) => page(await reviewLinkPage(rt.deps, event.queryStringParameters?.t ?? '')));

/** POST /approvals/review: the reviewer's decision (form fields `t`, `decision`, `comment`). */
export const vote = httpRoute('approvals', getRuntime, async (event, rt) => {
  const fields = form(event);
  const token = fields.get('t') ?? event.queryStringParameters?.t ?? '';
  return page(await voteFromLink(rt.deps, token, fields.get('decision') ?? undefined, fields.get('comment') ?? undefined));
});

/** GET /approvals?limit=&next= (OIDC): a page of the requests the caller reviews or made (all for admins, policy changes too for auditors), newest first, and `next` while there are more. */
export const list = httpRoute('approvals', getRuntime, async (event, rt) => {
  const caller = await requireCaller(event, rt, []);
  const role = { admin: caller.groups.includes(rt.config.adminGroup), auditor: caller.groups.includes(rt.config.auditorGroup) };
  return json(200, await listApprovals(rt.deps, caller, role, pageParams(event)));
});
