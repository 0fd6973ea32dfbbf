import { z } from 'zod';
import type { ApprovalRecord } from '../approval/request';

export const APPROVE_ACTION_ID = 'twokey_approve';
export const DENY_ACTION_ID = 'twokey_deny';
/** Slack refuses a section text over 3000 characters: a long statement is cut, and says so. */
export const MAX_SLACK_TEXT_CHARS = 2900;

export interface SlackBlocks {
  readonly text: string;
  readonly blocks: readonly Record<string, unknown>[];
}

function clip(text: string): string {
  return text.length <= MAX_SLACK_TEXT_CHARS ? text : `${text.slice(0, MAX_SLACK_TEXT_CHARS)}… (cut; the review page shows it whole)`;
}

/** Slack mrkdwn treats &, < and > as markup: escape them in anything a requester wrote. */
export function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function summary(record: ApprovalRecord): Record<string, unknown>[] {
  const who = `${record.requester.name} <${record.requester.email ?? record.requester.subject}>`;
  return [
    { type: 'section', text: { type: 'mrkdwn', text: escapeMrkdwn(`${who} asks to run a ${record.class} on ${record.target}`) } },
    { type: 'section', text: { type: 'mrkdwn', text: '```' + escapeMrkdwn(clip(record.text)).replace(/```/g, '`\u200b``') + '```' } },
    {
      type: 'context',
      elements: [
        { type: 'mrkdwn', text: escapeMrkdwn(`Reason: ${record.reason ?? '(none given)'}`) },
        { type: 'mrkdwn', text: escapeMrkdwn(`Blast radius: ${record.blastRadius ?? 'unknown'}`) },
        { type: 'mrkdwn', text: escapeMrkdwn(`Expires: ${record.expiresAt}`) },
      ],
    },
  ];
}

/** The request with Approve and Deny buttons; each button's value is the request id. */
export function approvalMessage(record: ApprovalRecord): SlackBlocks {
  return {
    text: `${record.requester.name} asks to run a ${record.class} on ${record.target}`,
    blocks: [
      ...summary(record),
      {
        type: 'actions',
        block_id: 'twokey_vote',
        elements: [
          { type: 'button', action_id: APPROVE_ACTION_ID, style: 'primary', text: { type: 'plain_text', text: 'Approve' }, value: record.requestId },
          { type: 'button', action_id: DENY_ACTION_ID, style: 'danger', text: { type: 'plain_text', text: 'Deny' }, value: record.requestId },
        ],
      },
    ],
  };
}

/** The same request with the buttons replaced by where it stands. */
export function outcomeMessage(record: ApprovalRecord, status: string): SlackBlocks {
  return {
    text: `${record.requester.name}'s ${record.class} on ${record.target}: ${status}`,
    blocks: [...summary(record), { type: 'section', text: { type: 'mrkdwn', text: `*${escapeMrkdwn(status)}*` } }],
  };
}

/** Where a decided request stands, in words: who decided it, or that no one did in time. */
export function outcomeText(record: Pick<ApprovalRecord, 'status' | 'votes'>): string {
  const by = (decision: 'approve' | 'deny'): string =>
    Object.values(record.votes)
      .filter((v) => v.decision === decision)
      .map((v) => v.reviewer.email)
      .join(', ');
  switch (record.status) {
    case 'approved':
      return `Approved by ${by('approve')}`;
    case 'denied':
      return `Denied by ${by('deny')}`;
    case 'expired':
      return 'Expired: no decision in time';
    case 'failed':
      return 'Failed: nothing was run';
    case 'pending':
      return 'Pending';
    default:
      return `Closed: ${record.status}`;
  }
}

/** The part of a `block_actions` interaction payload twokey reads; anything else is refused. */
export const blockActionsSchema = z.object({
  type: z.literal('block_actions'),
  user: z.object({ id: z.string().min(1).max(64) }),
  container: z.object({ channel_id: z.string().min(1).max(64), message_ts: z.string().min(1).max(64) }),
  actions: z
    .array(z.object({ action_id: z.enum([APPROVE_ACTION_ID, DENY_ACTION_ID]), value: z.string().min(1).max(128) }))
    .length(1),
});

export type BlockActions = z.infer<typeof blockActionsSchema>;
