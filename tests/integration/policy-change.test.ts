import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBDocumentClient, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/aws/credentials';
import type { LocalControlPlane } from '../../local/control-plane';
import { api, startTestControlPlane, TEST_POLICY, tokenFor, waitFor } from '../support/control-plane';
import { postDecision, readOutbox, waitForMail } from '../support/outbox';
import { changePolicy, proposePolicyChange, SECOND_ADMIN, withAdmins } from '../support/policy-change';


interface ListedRequest {
  requestId: string;
  kind: string;
  status: string;
  reason?: string;
  policyChange?: { baseVersion: number; diff: string; result?: { applied?: number; conflict?: number; refused?: string }; emergencyReason?: string };
}

describe('policy changes need a second admin (local control plane, real approval workflow)', () => {
  let cp: LocalControlPlane;
  let root: string;
  let grace: string;
  let ddb: DynamoDBDocumentClient;
  let policy: string;

  const current = async () => (await api(cp, root, 'GET', '/policies')).body as { version: number; source: string; changeRequest?: string; approvedBy?: string[] };
  const listed = async (requestId: string) => ((await api(cp, root, 'GET', '/approvals')).body.approvals as ListedRequest[]).find((r) => r.requestId === requestId);
  const withRead = (policy: string, read: string) => policy.replace('read: allow', `read: ${read}`).replace('read: deny', `read: ${read}`);
  const mailsFor = (requestId: string) => readOutbox(cp.outboxDir).filter((m) => m.text.includes(requestId));

  beforeAll(async () => {
    cp = await startTestControlPlane();
    root = await tokenFor(cp, 'root', ['admin']);
    grace = await tokenFor(cp, 'grace', ['admin']);
    ddb = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: cp.dynamo.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS }));
    policy = withAdmins(TEST_POLICY, cp.issuer);
    // The deployment's first policy is stored at once: there is nothing to protect yet.
    expect((await api(cp, root, 'PUT', '/policies', policy, { 'if-match': '"0"' })).status).toBe(200);
  });
  afterAll(async () => {
    ddb.destroy();
    await cp.stop();
  });

  it('holds a change until another admin approves it, showing the diff, then stores exactly the proposed document', async () => {
    const proposed = withRead(policy, 'deny');

    const put = await api(cp, root, 'PUT', '/policies?reason=OPS-7%20close%20reads', proposed, { 'if-match': '"1"' });

    expect(put.status).toBe(202);
    expect(put.body).toMatchObject({ status: 'pending', baseVersion: 1, reviewers: 1 });
    const requestId = put.body.requestId as string;
    expect((await current()).version).toBe(1);
    const mail = await waitForMail(cp.outboxDir, SECOND_ADMIN, requestId);
    expect(mail.subject).toContain('asks to change the policy (version 1 → 2)');
    expect(mail.text).toContain('-    actions: { read: allow, write: { approve: { groups: [dba] } } }');
    expect(mail.text).toContain('+    actions: { read: deny, write: { approve: { groups: [dba] } } }');
    const page = await fetch(mail.link);
    const html = await page.text();
    expect(page.status).toBe(200);
    expect(html).toContain('Policy change requested');
    expect(html).toContain('OPS-7 close reads');
    expect(html).toContain('<span class="del">-    actions: { read: allow, write: { approve: { groups: [dba] } } }</span>');
    expect(html).toContain('<span class="add">+    actions: { read: deny, write: { approve: { groups: [dba] } } }</span>');
    expect((await current()).version).toBe(1);

    expect((await postDecision(mail.link, mail.token, 'approve')).status).toBe(200);

    await waitFor(async () => ((await current()).version === 2 ? true : undefined), 10_000, 'version 2');
    expect(await current()).toMatchObject({ version: 2, source: proposed, changeRequest: requestId, approvedBy: [SECOND_ADMIN] });
    await waitFor(async () => (await listed(requestId))?.policyChange?.result, 5_000, 'result recorded');
    expect(await listed(requestId)).toMatchObject({ kind: 'policy-change', status: 'approved', policyChange: { baseVersion: 1, result: { applied: 2 } } });
  });

  it('never asks the requester to review their own change', async () => {
    const requestId = await proposePolicyChange(cp, grace, withRead(policy, 'allow'), 2);

    await waitForMail(cp.outboxDir, 'root@example.com', requestId);
    await new Promise((r) => setTimeout(r, 300));

    expect(mailsFor(requestId).map((m) => m.to)).toEqual(['root@example.com']);
    const mail = mailsFor(requestId)[0];
    expect((await postDecision(mail?.link ?? '', mail?.token ?? '', 'deny', 'not now')).status).toBe(200);
  });

  it('leaves the policy unchanged when the second admin denies', async () => {
    const requestId = await proposePolicyChange(cp, root, withRead(policy, 'allow'), 2);
    const mail = await waitForMail(cp.outboxDir, SECOND_ADMIN, requestId);

    expect((await postDecision(mail.link, mail.token, 'deny', 'no')).status).toBe(200);

    await waitFor(async () => ((await listed(requestId))?.status === 'denied' ? true : undefined), 5_000, 'denied');
    await new Promise((r) => setTimeout(r, 300));
    expect((await current()).version).toBe(2);
    expect((await listed(requestId))?.policyChange?.result).toBeUndefined();
  });

  it('fails an approved change as a conflict when another change replaced its base version first', async () => {
    const first = await proposePolicyChange(cp, root, withRead(policy, 'allow'), 2);
    const second = await proposePolicyChange(cp, root, `${policy}# a second proposal\n`, 2);
    const firstMail = await waitForMail(cp.outboxDir, SECOND_ADMIN, first);
    const secondMail = await waitForMail(cp.outboxDir, SECOND_ADMIN, second);

    await postDecision(firstMail.link, firstMail.token, 'approve');
    await waitFor(async () => ((await current()).version === 3 ? true : undefined), 10_000, 'version 3');
    await postDecision(secondMail.link, secondMail.token, 'approve');

    await waitFor(async () => (await listed(second))?.policyChange?.result, 10_000, 'second result');
    expect((await listed(second))?.policyChange?.result).toEqual({ conflict: 3 });
    expect(await current()).toMatchObject({ version: 3, changeRequest: first });
  });

  it('never applies a stored document other than the one whose hash was approved', async () => {
    const requestId = await proposePolicyChange(cp, root, withRead(policy, 'deny'), 3);
    const mail = await waitForMail(cp.outboxDir, SECOND_ADMIN, requestId);
    // Someone with write access to the approvals table swaps the proposal after the reviewer's mail went out.
    await ddb.send(new UpdateCommand({ TableName: cp.dynamo.tableNames.approvals, Key: { requestId }, UpdateExpression: 'SET #t = :t', ExpressionAttributeNames: { '#t': 'text' }, ExpressionAttributeValues: { ':t': `${policy}# swapped\n` } }));

    await postDecision(mail.link, mail.token, 'approve');

    await waitFor(async () => (await listed(requestId))?.policyChange?.result, 5_000, 'result recorded');
    expect((await listed(requestId))?.policyChange?.result).toEqual({ refused: 'the stored document does not match the approved hash' });
    expect((await current()).version).toBe(3);
  });

  it('refuses a stale base version with 409 before anyone is asked', async () => {
    const stale = await api(cp, root, 'PUT', '/policies', withRead(policy, 'deny'), { 'if-match': '"1"' });

    expect(stale.status).toBe(409);
    expect(stale.body).toMatchObject({ error: { code: 'version_conflict', details: { currentVersion: 3 } } });
  });

  it('applies an emergency change at once, mails every admin and auditor, audits it and lists it for admins and auditors', async () => {
    const proposed = withRead(policy, 'deny');

    const put = await api(cp, root, 'PUT', `/policies?emergency=true&reason=${encodeURIComponent('INC-9: reads leak data')}`, proposed, { 'if-match': '"3"' });

    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ version: 4, emergency: true });
    expect(await current()).toMatchObject({ version: 4, source: proposed });
    const entry = ((await api(cp, root, 'GET', '/approvals')).body.approvals as ListedRequest[]).find((r) => r.status === 'emergency');
    expect(entry).toMatchObject({ kind: 'policy-change', reason: 'INC-9: reads leak data', policyChange: { baseVersion: 3, emergencyReason: 'INC-9: reads leak data', result: { applied: 4 } } });
    const notices = mailsFor(entry?.requestId ?? 'none');
    expect(notices.map((m) => m.to).sort()).toEqual(['erin@example.com', 'grace@example.com', 'root@example.com']);
    expect(notices[0]?.subject).toMatch(/EMERGENCY policy change by root/);
    expect(notices[0]?.text).toContain('INC-9: reads leak data');
    expect(notices[0]?.text).toContain('+    actions: { read: deny');
    const erin = await tokenFor(cp, 'erin', ['auditor']);
    const seenByAuditor = (await api(cp, erin, 'GET', '/approvals')).body.approvals as ListedRequest[];
    expect(seenByAuditor.find((r) => r.status === 'emergency')?.requestId).toBe(entry?.requestId);
    const audit = (await ddb.send(new ScanCommand({ TableName: cp.dynamo.tableNames.auditEvents }))).Items ?? [];
    expect(audit.find((e) => e.action === 'policy.emergency-change')).toMatchObject({
      actor: JSON.stringify([cp.issuer, 'root']),
      subject: 'policy',
      detail: { reason: 'INC-9: reads leak data', fromVersion: 3, toVersion: 4, diff: expect.stringContaining('+    actions: { read: deny') },
    });
  });

  it('refuses an emergency change without a reason, and a change by a non-admin', async () => {
    const noReason = await api(cp, root, 'PUT', '/policies?emergency=true', policy, { 'if-match': '"4"' });
    const alice = await tokenFor(cp, 'alice', ['support']);
    const notAdmin = await api(cp, alice, 'PUT', `/policies?emergency=true&reason=x`, policy, { 'if-match': '"4"' });

    expect(noReason.status).toBe(400);
    expect(noReason.body).toMatchObject({ error: { message: 'an emergency change needs a reason' } });
    expect(notAdmin.status).toBe(403);
    expect((await current()).version).toBe(4);
  });

  it('refuses a change that no other admin could approve', async () => {
    const rootOnly = policy.replace(/, \{ subject: grace, email: grace@example.com, issuer: '[^']*' \}\]/, ']');
    expect(rootOnly).not.toContain('subject: grace');
    const { version } = await changePolicy(cp, root, rootOnly, 4);

    const refused = await api(cp, root, 'PUT', '/policies', policy, { 'if-match': `"${version}"` });

    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ error: { message: `no admin other than you is listed under reviewers.admin in policy version ${version} to approve this change` } });
  });
});

describe('a policy change nobody decides', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tk-policy-expiry-'));
  let cp: LocalControlPlane;

  afterAll(() => cp?.stop());

  it('expires through the workflow and leaves the policy unchanged', async () => {
    cp = await startTestControlPlane(dataDir);
    const root = await tokenFor(cp, 'root', ['admin']);
    const policy = withAdmins(TEST_POLICY, cp.issuer);
    expect((await api(cp, root, 'PUT', '/policies', policy, { 'if-match': '"0"' })).status).toBe(200);
    const requestId = await proposePolicyChange(cp, root, `${policy}# never decided\n`, 1);
    const mail = await waitForMail(cp.outboxDir, SECOND_ADMIN, requestId);
    // The reviewers' day runs out: the request's expiry moves to a moment from now, and a control-plane
    // restart runs its workflow again, which waits only for the time that is left.
    const ddb = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: cp.dynamo.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS }));
    await ddb.send(new UpdateCommand({ TableName: cp.dynamo.tableNames.approvals, Key: { requestId }, UpdateExpression: 'SET expiresAt = :e', ExpressionAttributeValues: { ':e': new Date(Date.now() + 1_500).toISOString() } }));
    ddb.destroy();
    const port = Number(new URL(cp.httpUrl).port);
    await cp.stop();
    cp = await startTestControlPlane(dataDir, port);
    const admin = await tokenFor(cp, 'root', ['admin']);

    await waitFor(async () => (((await api(cp, admin, 'GET', '/approvals')).body.approvals as ListedRequest[]).find((r) => r.requestId === requestId)?.status === 'expired' ? true : undefined), 15_000, 'expired');

    expect((await api(cp, admin, 'GET', '/policies')).body).toMatchObject({ version: 1, source: policy });
    expect((await postDecision(mail.link, mail.token, 'approve')).status).toBeGreaterThanOrEqual(400);
    expect((await api(cp, admin, 'GET', '/policies')).body).toMatchObject({ version: 1 });
  }, 40_000);
});
