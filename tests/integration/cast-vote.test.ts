import type { ApprovalRecord } from '../../core/approval/request';
import { castVote } from '../../lambdas/domain/approvals';
import { getRuntime } from '../../lambdas/shared/runtime';
import type { LocalControlPlane } from '../../local/control-plane';
import { startTestControlPlane } from '../support/control-plane';

const ISSUER = 'https://issuer.test';
const alice = { issuer: ISSUER, subject: 'alice', email: 'alice@example.com' };
const bob = { issuer: ISSUER, subject: 'bob', email: 'bob@example.com' };

const pending = (requestId: string, reviewers: ApprovalRecord['reviewers']): ApprovalRecord => ({
  requestId,
  agent: 'edge-1',
  kind: 'statement',
  target: 'orders-db',
  protocol: 'postgres',
  text: 'UPDATE t SET x = 1 WHERE id = 1',
  sha256: 'a'.repeat(64),
  class: 'write',
  rule: 'support',
  requester: { issuer: ISSUER, subject: 'alice', name: 'Alice', groups: ['support'] },
  approval: { groups: ['dba'], min: 1, timeoutSeconds: 900 },
  status: 'pending',
  reviewers,
  votes: {},
  createdAt: new Date().toISOString(),
  expiresAt: new Date(Date.now() + 900_000).toISOString(),
  linksSent: true,
  delivered: false,
});

describe('one vote, whatever carried it (castVote on the local stack)', () => {
  let cp: LocalControlPlane;
  const deps = () => getRuntime('test').deps;

  beforeAll(async () => {
    cp = await startTestControlPlane(undefined, 0, false);
  });
  afterAll(async () => {
    await cp.stop();
  });

  it('refuses a principal who is not among the request\'s reviewers, even with a reviewer\'s address or subject at another issuer', async () => {
    const record = pending('req-outsider', [bob]);
    await deps().approvals.create(record);

    expect(await castVote(deps(), record, { issuer: ISSUER, subject: 'mallory', email: 'bob@example.com' }, 'approve', undefined)).toEqual({ kind: 'not-a-reviewer' });
    expect(await castVote(deps(), record, { ...bob, issuer: 'https://other.test' }, 'approve', undefined)).toEqual({ kind: 'not-a-reviewer' });
    expect((await deps().approvals.get(record.requestId))?.votes).toEqual({});
  });

  it('refuses the requester even when a stored record lists them as a reviewer, and counts the other reviewer once', async () => {
    const record = pending('req-self', [alice, bob]);
    await deps().approvals.create(record);

    expect(await castVote(deps(), record, alice, 'approve', undefined)).toEqual({ kind: 'not-a-reviewer' });
    expect(await castVote(deps(), record, bob, 'approve', undefined)).toEqual({ kind: 'decided', outcome: 'approved' });
    expect(await castVote(deps(), record, bob, 'approve', undefined)).toMatchObject({ kind: expect.stringMatching(/^(duplicate|closed)$/) });
  });
});
