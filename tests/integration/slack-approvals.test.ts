import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { LocalSlack, type SlackMessage } from '../../local/slack/slack-api';
import { notify } from '../../lambdas/approval-workflow';
import { getRuntime } from '../../lambdas/shared/runtime';
import { waitFor } from '../support/control-plane';
import { postDecision, readOutbox, waitForMail } from '../support/outbox';
import { PG_TEST_POLICY, startPgStack, type PgStack } from '../support/pg-stack';

const SIGNING_SECRET = randomBytes(16).toString('hex');
const BOT_TOKEN = `xoxb-${randomBytes(12).toString('hex')}`;
const POLICY = `${PG_TEST_POLICY.replace(
  'blocks:',
  `  - name: quick
    targets: [test-pg]
    subjects: { groups: [quick] }
    actions: { read: allow, write: { approve: { groups: [dba], timeoutSeconds: 10 } } }
blocks:`,
)}
slack:
  groups: { dba: { channel: C0DBA } }
  users: { U0ONCALL: bob }
`;

describe('approvals in Slack (the local Slack API stand-in, signed button presses)', () => {
  let slack: LocalSlack;
  let stack: PgStack;

  beforeAll(async () => {
    slack = new LocalSlack({
      botToken: BOT_TOKEN,
      signingSecret: SIGNING_SECRET,
      channels: ['C0DBA'],
      users: {
        U0BOB: { email: 'bob@example.com', emailConfirmed: true },
        U0ALICE: { email: 'alice@example.com', emailConfirmed: true },
        U0EVE: { email: 'bob@example.com', emailConfirmed: false },
        U0ONCALL: { email: 'oncall@example.com', emailConfirmed: true },
      },
    });
    const apiUrl = await slack.start();
    stack = await startPgStack({ policy: POLICY, slack: { apiUrl, botToken: BOT_TOKEN, signingSecret: SIGNING_SECRET } });
    slack.interactionsUrl = `${stack.cp.httpUrl}/slack/interactions`;
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
    await slack?.stop();
  });

  /** alice's UPDATE through the agent, held for approval; resolves with psql's output once decided. */
  async function heldUpdate(status: string, groups = ['support']): Promise<{ out: Promise<string>; message: SlackMessage }> {
    const { host, port } = stack.endpoint('test-pg');
    const token = await stack.token('alice', groups);
    const sql = `UPDATE orders SET status = '${status}' WHERE id = 42`;
    const out = new Promise<string>((resolve) => {
      execFile('psql', [`host=${host} port=${port} dbname=demo user=alice`, '-X', '-c', sql], { env: { ...process.env, PGPASSWORD: token } }, (_e, stdout, stderr) => resolve(stdout + stderr));
    });
    const message = await waitFor(() => slack.messages.find((m) => JSON.stringify(m.blocks).includes(status)), 15_000, 'the Slack message');
    return { out, message };
  }
  const ephemeralTo = (user: string): string[] => slack.ephemeral.filter((e) => e.user === user).map((e) => e.text);

  it('posts the held write to the reviewer group\'s channel, and a reviewer\'s Approve runs it once and updates the message', async () => {
    const { out, message } = await heldUpdate('slack-approved');
    expect(message.channel).toBe('C0DBA');
    expect(JSON.stringify(message.blocks)).toContain("UPDATE orders SET status = 'slack-approved' WHERE id = 42");
    expect(message.text).toContain('alice asks to run a write on test-pg');
    const asFirstShown = { ...message, blocks: [...message.blocks] };

    expect(await slack.press(message, 'approve', 'U0BOB')).toBe(200);

    expect(await out).toMatch(/UPDATE 1/);
    expect(message.updates).toBe(1);
    expect(JSON.stringify(message.blocks)).toContain('Approved by bob@example.com');
    expect(JSON.stringify(message.blocks)).not.toContain('twokey_approve');
    // A client that still shows the buttons: a second press counts for nothing.
    expect(await slack.press(asFirstShown, 'deny', 'U0BOB')).toBe(200);
    expect(ephemeralTo('U0BOB').at(-1)).toBe('twokey: your vote on this request was recorded before. Nothing was changed.');
    expect(await slack.press(asFirstShown, 'deny', 'U0ONCALL')).toBe(200); // another Slack account mapped to bob
    expect(ephemeralTo('U0ONCALL').at(-1)).toBe('twokey: your vote on this request was recorded before. Nothing was changed.');
  });

  it('refuses a press with a wrong signature or outside the timestamp window, and changes nothing', async () => {
    const { out, message } = await heldUpdate('slack-forged');

    expect(await slack.press(message, 'approve', 'U0BOB', { signingSecret: 'f'.repeat(32) })).toBe(403);
    expect(await slack.press(message, 'approve', 'U0BOB', { ageSeconds: 301 })).toBe(403);
    expect(message.updates).toBe(0);

    expect(await slack.press(message, 'deny', 'U0BOB')).toBe(200);
    expect(await out).toContain('denied by bob@example.com');
    expect(JSON.stringify(message.blocks)).toContain('Denied by bob@example.com');
  });

  it('refuses the requester and a Slack user whose email Slack has not confirmed, then takes a mapped reviewer\'s vote', async () => {
    const { out, message } = await heldUpdate('slack-mapped');

    expect(await slack.press(message, 'approve', 'U0ALICE')).toBe(200);
    expect(await slack.press(message, 'approve', 'U0EVE')).toBe(200);
    expect(ephemeralTo('U0ALICE').at(-1)).toBe('twokey: you are not a reviewer of this request. Nothing was changed.');
    expect(ephemeralTo('U0EVE').at(-1)).toBe('twokey: you are not a reviewer of this request. Nothing was changed.');
    expect(message.updates).toBe(0);

    expect(await slack.press(message, 'approve', 'U0ONCALL')).toBe(200);
    expect(await out).toMatch(/UPDATE 1/);
    expect(JSON.stringify(message.blocks)).toContain('Approved by bob@example.com');
  });

  it('updates the message with the outcome when a mailed link decides the request', async () => {
    const { out, message } = await heldUpdate('link-approved');
    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', 'link-approved');

    expect((await postDecision(mail.link, mail.token, 'approve')).status).toBe(200);

    expect(await out).toMatch(/UPDATE 1/);
    await waitFor(() => message.updates > 0, 15_000, 'the message update');
    expect(JSON.stringify(message.blocks)).toContain('Approved by bob@example.com');
    expect(JSON.stringify(message.blocks)).not.toContain('twokey_approve');
    expect(message.updates).toBe(1);
  });

  it('updates the message when the request expires without a decision', async () => {
    const { out, message } = await heldUpdate('slack-expired', ['quick']);

    expect(await out).toMatch(/expired/i);

    await waitFor(() => message.updates > 0, 15_000, 'the message update');
    expect(JSON.stringify(message.blocks)).toContain('Expired: no decision in time');
    expect(JSON.stringify(message.blocks)).not.toContain('twokey_deny');
  }, 40_000);

  it('posts once however often the notify step runs for a request', async () => {
    const { out, message } = await heldUpdate('slack-retried');
    const requestId = String((message.blocks.find((b) => b.type === 'actions') as { elements: { value: string }[] }).elements[0]?.value);
    const { deps } = getRuntime('approval-workflow');
    const mails = readOutbox(stack.cp.outboxDir).length;

    // What Step Functions does when the step is retried: the same request, the same task token.
    await notify({ requestId, taskToken: (await deps.approvals.getTaskToken(requestId)) as string });
    await notify({ requestId, taskToken: (await deps.approvals.getTaskToken(requestId)) as string });

    expect(slack.messages.filter((m) => JSON.stringify(m.blocks).includes('slack-retried'))).toHaveLength(1);
    expect(readOutbox(stack.cp.outboxDir)).toHaveLength(mails);
    expect(await slack.press(message, 'deny', 'U0BOB')).toBe(200);
    expect(await out).toContain('denied by bob@example.com');
    expect(message.updates).toBe(1);
  });
});
