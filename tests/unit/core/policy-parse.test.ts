import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parsePolicy, MAX_POLICY_BYTES } from '../../../core/policy/parse';

const demo = readFileSync(join(__dirname, '../../../examples/dev/policy.yaml'), 'utf8');

describe('parsePolicy', () => {
  it('accepts the demo policy and fills defaults', () => {
    const result = parsePolicy(demo);
    if (!result.ok) throw result.error;
    expect(result.value.targets.map((t) => t.name)).toEqual(['demo-pg']);
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
