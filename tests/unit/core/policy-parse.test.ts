import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parsePolicy, MAX_POLICY_BYTES } from '../../../core/policy/parse';
import { withDevIssuer } from '../../../local/oidc/dev-issuer';

const demo = readFileSync(join(__dirname, '../../../examples/dev/policy.yaml'), 'utf8');
const problemsOf = (source: string): string[] => {
  const result = parsePolicy(source);
  return result.ok ? [] : result.error.problems.map((p) => `${p.path}: ${p.message}`);
};

describe('parsePolicy', () => {
  it('accepts the demo policy once it has an issuer, and fills defaults', () => {
    expect(problemsOf(demo)).toContain('reviewers.dba.0: names no issuer and the policy has no top-level issuer');
    const result = parsePolicy(withDevIssuer(demo, 'https://issuer.test'));
    if (!result.ok) throw result.error;
    expect(result.value.targets.map((t) => t.name)).toEqual(['demo-pg', 'demo-k8s']);
    expect(result.value.rules[0]?.actions.write).toEqual({ approve: { groups: ['dba'], min: 1, timeoutSeconds: 900, requireReason: false } });
    expect(result.value.masks.find((m) => m.name === 'customer-pii-analyst')?.strict).toBe(true);
  });

  it('reports the path, reason and YAML line of a bad decision', () => {
    const source = ['targets:', '  - name: t1', '    protocol: postgres', '    agent: a1', 'rules:', '  - name: r1', '    targets: [t1]', '    subjects: { users: [alice] }', '    actions:', '      write: maybe', ''].join('\n');
    const result = parsePolicy(source);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const problem = result.error.problems[0];
    expect(problem?.path).toBe('rules.0.actions.write');
    expect(problem?.line).toBe(10);
  });

  it('refuses a bare address as a reviewer, with a message that says what to write', () => {
    expect(problemsOf('issuer: https://issuer.test\nreviewers: { dba: [bob@example.com] }\n')).toEqual([
      'reviewers.dba.0: a reviewer is { subject, email } (issuer optional): a bare address cannot be told apart from the requester',
    ]);
    expect(problemsOf('issuer: https://issuer.test\nreviewers: { dba: [{ email: bob@example.com }] }\n')).toEqual([expect.stringMatching(/^reviewers\.dba\.0\.subject: /)]);
  });

  it('refuses a directory where one person has two mailboxes or one mailbox two people', () => {
    const twoMailboxes = 'issuer: https://i.test\nreviewers:\n  dba: [{ subject: bob, email: bob@example.com }]\n  sec: [{ subject: bob, email: robert@example.com }]\n';
    expect(problemsOf(twoMailboxes)).toEqual(['reviewers.sec.0: subject bob has two addresses in reviewers']);
    const sharedMailbox = 'issuer: https://i.test\nreviewers:\n  dba: [{ subject: bob, email: ops@example.com }, { subject: carol, email: OPS@example.com }]\n';
    expect(problemsOf(sharedMailbox)).toEqual(['reviewers.dba.1: OPS@example.com belongs to two subjects in reviewers']);
    const sameNameTwoIssuers = 'issuer: https://i.test\nreviewers:\n  dba: [{ subject: bob, email: bob@example.com }, { subject: bob, issuer: https://other.test, email: bob2@example.com }]\n';
    expect(problemsOf(sameNameTwoIssuers)).toEqual([]);
  });

  it('requires an issuer for every user named without one, and an address without control characters', () => {
    const rule = (users: string): string => `targets: [{ name: t, protocol: postgres, agent: a }]\nrules: [{ name: r, targets: [t], subjects: { users: ${users} }, actions: { read: allow } }]\n`;
    expect(problemsOf(rule('[alice]'))).toEqual(['rules.0.subjects.users.0: names no issuer and the policy has no top-level issuer']);
    expect(problemsOf(rule('[{ subject: alice, issuer: https://i.test }]'))).toEqual([]);
    expect(problemsOf(`issuer: https://i.test\n${rule('[alice, { email: a@example.com }]')}`)).toEqual([]);
    expect(problemsOf(`issuer: https://i.test\n${rule('[{ email: "a@example.com\\r\\nBcc: x@evil.test" }]')}`)).not.toEqual([]);
  });

  it('rejects unknown keys instead of ignoring them', () => {
    const result = parsePolicy('targets: []\nrulez: []\n');
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.message).toMatch(/rulez/);
  });

  it('rejects an approver group with no reviewers', () => {
    const source = `targets: [{ name: t, protocol: postgres, agent: a }]
rules:
  - name: r
    targets: [t]
    subjects: { groups: [g] }
    actions: { write: { approve: { groups: [nobody] } } }
`;
    const result = parsePolicy(source);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.problems[0]?.message).toMatch(/nobody has no entry in reviewers/);
  });

  it('rejects duplicate targets, duplicate keys and invalid YAML with a line', () => {
    const dupTarget = parsePolicy('targets:\n  - { name: t, protocol: postgres, agent: a }\n  - { name: t, protocol: ssh, agent: a }\n');
    expect(!dupTarget.ok && dupTarget.error.problems[0]?.message).toMatch(/duplicate target t/);
    const dupKey = parsePolicy('targets: []\ntargets: []\n');
    expect(!dupKey.ok && dupKey.error.problems[0]?.line).toBe(2);
    const broken = parsePolicy('targets: [\n');
    expect(broken.ok).toBe(false);
  });

  it('rejects a rule without subjects and a protocol it does not know', () => {
    expect(parsePolicy('targets: [{ name: t, protocol: ftp, agent: a }]\n').ok).toBe(false);
    expect(parsePolicy('rules: [{ name: r, targets: [t], subjects: {}, actions: {} }]\n').ok).toBe(false);
  });

  it('refuses a document over the size limit', () => {
    const result = parsePolicy(`# ${'x'.repeat(MAX_POLICY_BYTES)}\n`);
    expect(!result.ok && result.error.message).toMatch(/larger than/);
  });
});
