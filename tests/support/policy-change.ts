import type { LocalControlPlane } from '../../local/control-plane';
import { api, waitFor } from './control-plane';
import { postDecision, waitForMail } from './outbox';

/** The second admin of {@link withAdmins}' `reviewers.admin` (root is the first). */
export const SECOND_ADMIN = 'grace@example.com';

/**
 * A test policy with root and grace as the admins and erin as the auditor of its reviewers directory,
 * at the local control plane's issuer (the tokens of `tokenFor` come from there), or at the policy's
 * own issuer when none is given. The `reviewers:` line must be a one-line flow map, as in TEST_POLICY.
 */
export function withAdmins(policy: string, issuer?: string): string {
  const entry = (user: string) => `{ subject: ${user}, email: ${user}@example.com${issuer ? `, issuer: '${issuer}'` : ''} }`;
  const line = /^reviewers: \{ (.*) \}$/m;
  if (!line.test(policy)) throw new Error('withAdmins needs a one-line `reviewers: { ... }`');
  return policy.replace(line, `reviewers: { $1, admin: [${entry('root')}, ${entry('grace')}], auditor: [${entry('erin')}] }`);
}

/**
 * Changes a stored policy the way admins must: one proposes it (PUT /policies answers 202 with a
 * request id), the second approves through the link mailed to them, the workflow stores it.
 * Resolves once the new version is current.
 */
export async function changePolicy(cp: LocalControlPlane, proposerToken: string, source: string, baseVersion: number, approver = SECOND_ADMIN): Promise<{ requestId: string; version: number }> {
  const requestId = await proposePolicyChange(cp, proposerToken, source, baseVersion);
  const mail = await waitForMail(cp.outboxDir, approver, requestId);
  const decided = await postDecision(mail.link, mail.token, 'approve');
  if (decided.status !== 200) throw new Error(`approving policy change ${requestId}: HTTP ${decided.status}`);
  const version = baseVersion + 1;
  await waitFor(async () => ((await api(cp, proposerToken, 'GET', '/policies')).body.version === version ? true : undefined), 10_000, `policy version ${version}`);
  return { requestId, version };
}

/** PUT /policies for a change; returns the request id of the 202. */
export async function proposePolicyChange(cp: LocalControlPlane, proposerToken: string, source: string, baseVersion: number, query = ''): Promise<string> {
  const put = await api(cp, proposerToken, 'PUT', `/policies${query}`, source, { 'if-match': `"${baseVersion}"` });
  if (put.status !== 202) throw new Error(`PUT /policies: expected 202, got ${put.status} ${JSON.stringify(put.body)}`);
  return put.body.requestId as string;
}
