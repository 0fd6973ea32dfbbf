import type { ApprovalRecord } from '../../../core/approval/request';
import { isLinkReviewer, signInRequired, type ReviewerSession } from '../../../lambdas/domain/reviewer-sign-in';

const IDP = 'https://idp.example.com';
const OTHER = 'https://other-idp.example.com';
const bob = { issuer: IDP, subject: 'bob', email: 'bob@example.com' };
const session = (iss: string, sub: string, email?: string): ReviewerSession => ({ iss, sub, email, exp: Number.MAX_SAFE_INTEGER });

describe('the signed-in reviewer and the link\'s reviewer', () => {
  it('are the same person when the IdP names the directory entry\'s issuer and subject, with or without an address', () => {
    expect(isLinkReviewer(session(IDP, 'bob', 'bob@example.com'), bob)).toBe(true);
    expect(isLinkReviewer(session(IDP, 'bob'), bob)).toBe(true);
  });

  it('are not the same person when only the verified address matches (another subject, or the same subject at another issuer)', () => {
    expect(isLinkReviewer(session(IDP, 'mallory', 'bob@example.com'), bob)).toBe(false);
    expect(isLinkReviewer(session(OTHER, 'bob', 'bob@example.com'), bob)).toBe(false);
  });
});

describe('whether a reviewer must sign in to vote', () => {
  const policy = (source: string) => ({ latest: async () => ({ version: 1, source, updatedAt: '', updatedBy: '' }) });
  const DIRECTORY = `issuer: ${IDP}
reviewers:
  dba: [{ subject: bob, email: bob@example.com }]
  ops: [{ subject: carol, email: carol@example.com }]
`;
  const record = { approval: { groups: ['dba', 'ops'], min: 1, timeoutSeconds: 60 } } as unknown as ApprovalRecord;

  it('must when a marked group of the request lists the reviewer\'s principal, and need not for an unmarked group', async () => {
    const deps = { policies: policy(`${DIRECTORY}reviewerSignIn: [dba]\n`) };
    expect(await signInRequired(deps, record, bob)).toBe(true);
    expect(await signInRequired(deps, record, { issuer: IDP, subject: 'carol', email: 'carol@example.com' })).toBe(false);
  });

  it('must when the reviewer is no longer in the request\'s groups and one of them is marked, or when there is no valid policy', async () => {
    expect(await signInRequired({ policies: policy(`${DIRECTORY}reviewerSignIn: [dba]\n`) }, record, { issuer: OTHER, subject: 'bob', email: 'bob@example.com' })).toBe(true);
    expect(await signInRequired({ policies: policy('not: [valid') }, record, bob)).toBe(true);
  });
});
