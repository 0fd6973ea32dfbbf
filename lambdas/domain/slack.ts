import { entriesOf, type Reviewer } from '../../core/approval/reviewers';
import { principalKey } from '../../core/identity/identity';
import type { PolicyDocument } from '../../core/policy/schema';
import type { ApprovalRecord } from '../../core/approval/request';
import { approvalMessage, blockActionsSchema, outcomeMessage, outcomeText, APPROVE_ACTION_ID, type BlockActions } from '../../core/slack/approval-message';
import { verifySlackRequest } from '../../core/slack/signature';
import { castVote } from './approvals';
import type { ControlPlaneDeps, SlackApi } from './deps';
import { ForbiddenError, InvalidRequestError, NotFoundError } from './errors';
import { parseStoredPolicy } from './policies';

async function currentPolicy(deps: Pick<ControlPlaneDeps, 'policies'>): Promise<PolicyDocument | undefined> {
  const record = await deps.policies.latest();
  const parsed = record ? parseStoredPolicy(record) : undefined;
  return parsed?.ok ? parsed.value : undefined;
}

/**
 * Workflow step 2, after the mails: the request with Approve/Deny buttons in each place the policy
 * names for its reviewer groups, once per place however often the step is retried. Mail already went
 * out, so a Slack failure is logged, not fatal.
 */
export async function postToSlack(deps: ControlPlaneDeps, requestId: string): Promise<void> {
  const slack = deps.slack;
  if (!slack) return;
  const record = await deps.approvals.get(requestId);
  const settings = record?.status === 'pending' ? (await currentPolicy(deps))?.slack : undefined;
  if (!record || !settings) return;
  const places = new Set(record.approval.groups.flatMap((g) => { const s = settings.groups[g]; return s ? [...(s.channel ? [s.channel] : []), ...(s.users ?? [])] : []; }));
  const message = approvalMessage(record);
  let posted = 0;
  for (const place of places) {
    if (!(await slack.posts.claim(requestId, place))) continue;
    try {
      await slack.posts.posted(requestId, place, await slack.api.postMessage(place, message));
      posted++;
    } catch (e) {
      await slack.posts.release(requestId, place);
      deps.log.warn('slack.post-failed', { requestId, channel: place, error: e instanceof Error ? e.message : String(e) });
    }
  }
  if (posted > 0) deps.log.info('slack.posted', { requestId, places: posted });
  // Decided while the posts went out: they show the outcome too.
  const now = await deps.approvals.get(requestId);
  if (now && now.status !== 'pending') await showOutcomeInSlack(deps, now);
}

/**
 * Every message of a decided request shows its outcome instead of the buttons, once, whichever way it
 * was decided (a button, a mailed link, the timeout). A failed update is logged: the decision stands.
 */
export async function showOutcomeInSlack(deps: ControlPlaneDeps, record: ApprovalRecord): Promise<void> {
  const slack = deps.slack;
  if (!slack || record.status === 'pending') return;
  const message = outcomeMessage(record, outcomeText(record));
  for (const [place, post] of Object.entries(await slack.posts.list(record.requestId))) {
    if (!post.channel || !post.ts || post.outcome) continue;
    if (!(await slack.posts.claimOutcome(record.requestId, place, record.status))) continue;
    try {
      await slack.api.updateMessage(post.channel, post.ts, message);
    } catch (e) {
      await slack.posts.releaseOutcome(record.requestId, place);
      deps.log.warn('slack.update-failed', { requestId: record.requestId, channel: post.channel, error: e instanceof Error ? e.message : String(e) });
    }
  }
}

export interface SlackRequest {
  readonly signature: string | undefined;
  readonly timestamp: string | undefined;
  readonly rawBody: string;
}

function parseInteraction(rawBody: string): BlockActions {
  const payload = new URLSearchParams(rawBody).get('payload');
  let value: unknown;
  try {
    value = JSON.parse(payload ?? '');
  } catch {
    throw new InvalidRequestError('no interaction payload');
  }
  const parsed = blockActionsSchema.safeParse(value);
  if (!parsed.success) throw new InvalidRequestError('not a twokey button press');
  return parsed.data;
}

type Principal = Pick<Reviewer, 'issuer' | 'subject'>;

const NOT_A_REVIEWER = 'twokey: you are not a reviewer of this request. Nothing was changed.';

/**
 * The directory reviewer (a principal) a Slack user is: the policy's explicit map first; else the
 * address Slack says the user confirmed, when exactly one directory entry has it. Slack's display
 * name and an unconfirmed address name nobody.
 */
export async function reviewerOf(api: Pick<SlackApi, 'confirmedEmail'>, policy: PolicyDocument | undefined, userId: string): Promise<Principal | undefined> {
  if (!policy) return undefined;
  const mapped = policy.slack?.users[userId];
  if (mapped !== undefined) {
    const named = typeof mapped === 'string' ? { subject: mapped, issuer: undefined } : mapped;
    return { subject: named.subject, issuer: named.issuer ?? policy.issuer ?? '' };
  }
  const email = (await api.confirmedEmail(userId))?.toLowerCase();
  if (!email) return undefined;
  const owners = new Map(
    entriesOf(policy, Object.keys(policy.reviewers))
      .filter((r) => r.email.toLowerCase() === email)
      .map((r) => [principalKey(r), r] as const),
  );
  const [only, ...others] = owners.values();
  return only && others.length === 0 ? { issuer: only.issuer, subject: only.subject } : undefined;
}

/**
 * A press of Approve or Deny. The request must carry Slack's signature over its exact body, made
 * within the timestamp window; the presser must map to a reviewer of the request (never its
 * requester, who is not among them); then it is one vote under the same rules as a link, and the
 * request's messages show the outcome once it is decided.
 */
export async function handleSlackInteraction(deps: ControlPlaneDeps, request: SlackRequest): Promise<void> {
  const slack = deps.slack;
  if (!slack) throw new NotFoundError('Slack is not configured');
  const verified = verifySlackRequest(request, await slack.signingSecret(), deps.clock().getTime());
  if (!verified.ok) {
    deps.log.warn('slack.request.rejected', { reason: verified.error });
    throw new ForbiddenError('not a valid Slack request');
  }
  const press = parseInteraction(request.rawBody);
  const action = press.actions[0] as BlockActions['actions'][number];
  const { channel_id: channel, message_ts: ts } = press.container;
  const tell = (text: string): Promise<void> => slack.api.tellUser(channel, press.user.id, text);
  const record = await deps.approvals.get(action.value);
  if (!record) return tell('twokey: this request is unknown. Nothing was changed.');
  const principal = await reviewerOf(slack.api, await currentPolicy(deps), press.user.id);
  const reviewer = principal && record.reviewers.find((r) => principalKey(r) === principalKey(principal));
  if (!reviewer) {
    deps.log.warn('slack.vote.refused', { requestId: record.requestId, slackUser: press.user.id, reason: principal ? 'not a reviewer of this request' : 'not a directory reviewer' });
    return tell(NOT_A_REVIEWER);
  }
  // The workflow's timeout records the expiry and updates the messages.
  if (record.status === 'pending' && deps.clock().getTime() >= Date.parse(record.expiresAt)) return tell('twokey: this request has expired. Nothing was changed.');
  const decision = action.action_id === APPROVE_ACTION_ID ? 'approve' : 'deny';
  const result = await castVote(deps, record, reviewer, decision, undefined);
  switch (result.kind) {
    case 'recorded':
      return tell(`twokey: your ${decision} is recorded: ${result.approvals} of ${record.approval.min} approvals so far.`);
    case 'not-a-reviewer':
      return tell(NOT_A_REVIEWER);
    case 'duplicate':
      return tell('twokey: your vote on this request was recorded before. Nothing was changed.');
    case 'decided':
    case 'closed': {
      const now = await deps.approvals.get(record.requestId);
      if (now) await showOutcomeInSlack(deps, now);
      if (result.kind === 'closed') return tell('twokey: this request is no longer pending. Nothing was changed.');
    }
  }
}
