import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decide, recordingFor, type Action } from '../../../core/policy/decide';
import { parsePolicy } from '../../../core/policy/parse';
import type { PolicyDocument } from '../../../core/policy/schema';
import { withDevIssuer } from '../../../local/oidc/dev-issuer';
import { identity, TEST_ISSUER } from '../../support/identities';

function policy(source: string): PolicyDocument {
  const parsed = parsePolicy(source);
  if (!parsed.ok) throw parsed.error;
  return parsed.value;
}

const demo = policy(withDevIssuer(readFileSync(join(__dirname, '../../../examples/dev/policy.yaml'), 'utf8'), TEST_ISSUER));
const alice = identity('alice', ['support']);
const bob = identity('bob', ['dba']);
const dave = identity('dave', ['analyst']);
const erin = identity('erin', ['auditor']);

const action = (cls: Action['class'], extra: Partial<Action> = {}): Action => ({ class: cls, ...extra });

describe('decide() on the demo policy', () => {
  it.each([
    ['alice', alice, 'read', 'allow'],
    ['alice', alice, 'control', 'allow'],
    ['alice', alice, 'write', 'approve'],
    ['alice', alice, 'ddl', 'deny'],
    ['alice', alice, 'admin', 'deny'],
    ['alice', alice, 'unknown', 'deny'],
    ['dave', dave, 'read', 'allow'],
    ['dave', dave, 'write', 'deny'],
    ['bob', bob, 'ddl', 'approve'],
    ['bob', bob, 'admin', 'deny'],
    ['erin (no rule on demo-pg)', erin, 'read', 'deny'],
  ] as const)('%s %s -> %s', (_who, who, cls, expected) => {
    expect(decide(who, 'demo-pg', action(cls), demo).kind).toBe(expected);
  });

  it('names the approver groups and timeout of an approval', () => {
    const decision = decide(alice, 'demo-pg', action('write'), demo);
    expect(decision).toMatchObject({ kind: 'approve', rule: 'support-read-approve-writes', approval: { groups: ['dba'], min: 1, timeoutSeconds: 900 } });
  });

  it('denies a target the policy does not know', () => {
    expect(decide(alice, 'prod-pg', action('read'), demo)).toMatchObject({ kind: 'deny', reason: 'target prod-pg is not in the policy' });
  });

  it('applies block rules before any allow', () => {
    const decision = decide(bob, 'demo-pg', action('write', { statements: ['update-without-where'] }), demo);
    expect(decision).toMatchObject({ kind: 'deny', rule: 'no-destructive-statements' });
  });

  it('returns the mask rules of the caller with an allow', () => {
    const decision = decide(dave, 'demo-pg', action('read'), demo);
    expect(decision.kind === 'allow' && decision.masks.map((m) => m.name)).toEqual(['customer-pii-analyst']);
    const forBob = decide(bob, 'demo-pg', action('read'), demo);
    expect(forBob.kind === 'allow' && forBob.masks).toEqual([]);
  });
});

describe('decide() resolution rules', () => {
  const layered = policy(`
issuer: ${TEST_ISSUER}
targets: [{ name: prod-db, protocol: postgres, agent: a }, { name: dev-db, protocol: postgres, agent: a }]
reviewers: { dba: [{ subject: bob, email: bob@example.com }], sec: [{ subject: sam, email: sam@example.com }] }
rules:
  - { name: everyone-reads, targets: ['*'], subjects: { groups: [eng] }, actions: { read: allow, write: allow } }
  - { name: prod-writes-approved, targets: ['prod-*'], subjects: { groups: [eng] }, actions: { write: { approve: { groups: [dba] } } } }
  - { name: prod-writes-two, targets: ['prod-*'], subjects: { users: [{ email: mallory@example.com }] }, actions: { write: { approve: { groups: [dba, sec], min: 2 } } } }
  - { name: contractors-no-writes, targets: ['*'], subjects: { groups: [contractor] }, actions: { write: deny } }
blocks:
  - { name: no-pg-catalog, targets: ['*'], tables: ['pg_catalog.*'] }
  - { name: no-kill, targets: ['prod-*'], functions: ['pg_terminate_backend'] }
`);
  const eng = identity('eve', ['eng']);
  const contractor = identity('carl', ['eng', 'contractor']);
  const mallory = identity('m1', ['eng'], 'Mallory@Example.com');

  it('lets the most restrictive matching rule win', () => {
    expect(decide(eng, 'dev-db', action('write'), layered).kind).toBe('allow');
    expect(decide(eng, 'prod-db', action('write'), layered)).toMatchObject({ kind: 'approve', rule: 'prod-writes-approved' });
    expect(decide(contractor, 'dev-db', action('write'), layered)).toMatchObject({ kind: 'deny', rule: 'contractors-no-writes' });
  });

  it('prefers the approval that needs more reviewers and matches users by verified email case-insensitively', () => {
    expect(decide(mallory, 'prod-db', action('write'), layered)).toMatchObject({ kind: 'approve', approval: { min: 2 } });
  });

  it('denies by default when no rule names the class', () => {
    expect(decide(eng, 'dev-db', action('ddl'), layered)).toMatchObject({ kind: 'deny', reason: 'no rule grants ddl on dev-db' });
  });

  it('blocks by table glob and by function, only on matching targets', () => {
    expect(decide(eng, 'dev-db', action('read', { tables: ['pg_catalog.pg_authid'] }), layered).kind).toBe('deny');
    expect(decide(eng, 'dev-db', action('read', { functions: ['pg_terminate_backend'] }), layered).kind).toBe('allow');
    expect(decide(eng, 'prod-db', action('read', { functions: ['pg_terminate_backend'] }), layered)).toMatchObject({ kind: 'deny', rule: 'no-kill' });
  });

  it('treats glob metacharacters in names literally', () => {
    expect(decide(eng, 'dev-db', action('read', { tables: ['pg_catalogXfoo'] }), layered).kind).toBe('allow');
  });
});

describe('decide() names users by issuer and subject', () => {
  const named = policy(`
issuer: ${TEST_ISSUER}
targets: [{ name: db, protocol: postgres, agent: a }]
rules:
  - { name: alice-writes, targets: [db], subjects: { users: [alice] }, actions: { read: allow, write: allow } }
  - { name: partner-reads, targets: [db], subjects: { users: [{ subject: p-7, issuer: 'https://partner.test' }] }, actions: { read: allow } }
  - { name: mailbox-reads, targets: [db], subjects: { users: [{ email: ops@example.com }] }, actions: { read: allow } }
  - { name: by-address, targets: [db], subjects: { users: [carol@example.com] }, actions: { write: allow } }
blocks:
  - { name: no-drop-for-alice, targets: [db], subjects: { users: [alice] }, statements: [drop] }
masks:
  - { name: alice-masked, targets: [db], subjects: { users: [alice] }, columns: [public.t.secret] }
`);
  const at = (issuer: string, subject: string, email?: string): ReturnType<typeof identity> => ({ ...identity(subject, [], email), issuer });

  it('matches a bare name as the subject at the policy issuer only', () => {
    expect(decide(at(TEST_ISSUER, 'alice'), 'db', action('write'), named).kind).toBe('allow');
    expect(decide(at('https://other.test', 'alice'), 'db', action('read'), named).kind).toBe('deny');
    expect(decide(at(TEST_ISSUER, 'Alice'), 'db', action('read'), named).kind).toBe('deny');
  });

  it('applies blocks and masks by principal too', () => {
    expect(decide(at(TEST_ISSUER, 'alice'), 'db', action('read', { statements: ['drop'] }), named)).toMatchObject({ kind: 'deny', rule: 'no-drop-for-alice' });
    expect(decide(at('https://other.test', 'alice'), 'db', action('read', { statements: ['drop'] }), named).kind).toBe('deny');
    const masked = decide(at(TEST_ISSUER, 'alice'), 'db', action('read'), named);
    expect(masked.kind === 'allow' && masked.masks.map((m) => m.name)).toEqual(['alice-masked']);
    const elsewhere = decide(at('https://partner.test', 'alice'), 'db', action('read'), named);
    expect(elsewhere.kind).toBe('deny');
  });

  it('matches an explicit issuer, and an { email } name only on a verified address', () => {
    expect(decide(at('https://partner.test', 'p-7'), 'db', action('read'), named).kind).toBe('allow');
    expect(decide(at(TEST_ISSUER, 'p-7'), 'db', action('read'), named).kind).toBe('deny');
    expect(decide(at(TEST_ISSUER, 'u-1', 'OPS@example.com'), 'db', action('read'), named).kind).toBe('allow');
    expect(decide(at(TEST_ISSUER, 'u-1', undefined), 'db', action('read'), named).kind).toBe('deny');
    expect(decide(at('https://partner.test', 'u-1', 'ops@example.com'), 'db', action('read'), named).kind).toBe('deny');
  });

  it('never reads a bare address as an email: a verified carol@example.com is not the subject carol@example.com', () => {
    expect(decide(at(TEST_ISSUER, 'c-9', 'carol@example.com'), 'db', action('write'), named).kind).toBe('deny');
    expect(decide(at(TEST_ISSUER, 'carol@example.com'), 'db', action('write'), named).kind).toBe('allow');
  });
});

describe('recordingFor', () => {
  const recorded = policy(`
targets:
  - { name: prod-db, protocol: postgres, agent: a }
  - { name: scratch-db, protocol: postgres, agent: a, recording: { mode: off } }
  - { name: audit-db, protocol: postgres, agent: a, recording: { maxRowsPerStatement: 5 } }
recording: { mode: strict, maxRowsPerStatement: 50 }
`);

  it("takes the policy's section for a target without its own, and the target's fields over it", () => {
    expect(recordingFor(recorded, 'prod-db')).toEqual({ mode: 'strict', maxRowsPerStatement: 50 });
    expect(recordingFor(recorded, 'scratch-db')).toEqual({ mode: 'off', maxRowsPerStatement: 50 });
    expect(recordingFor(recorded, 'audit-db')).toEqual({ mode: 'strict', maxRowsPerStatement: 5 });
    expect(recordingFor(recorded, 'unknown-db')).toEqual({ mode: 'strict', maxRowsPerStatement: 50 });
  });

  it('defaults to best-effort with the default row cap', () => {
    expect(recordingFor(demo, 'demo-pg')).toEqual({ mode: 'best-effort', maxRowsPerStatement: 1000 });
  });

  it("rejects a target's recording mode or field it does not know", () => {
    expect(parsePolicy('targets: [{ name: t, protocol: postgres, agent: a, recording: { mode: sometimes } }]\n').ok).toBe(false);
    expect(parsePolicy('targets: [{ name: t, protocol: postgres, agent: a, recording: { rows: 5 } }]\n').ok).toBe(false);
  });

  it('records keystrokes only where the policy or the target turns input on', () => {
    const typed = policy(`
targets:
  - { name: box, protocol: ssh, agent: a }
  - { name: quiet-box, protocol: ssh, agent: a, recording: { input: false } }
recording: { input: true }
`);
    expect(recordingFor(typed, 'box').input).toBe(true);
    expect(recordingFor(typed, 'quiet-box').input).toBe(false);
    expect(recordingFor(recorded, 'prod-db').input).toBeFalsy();
    expect(parsePolicy('targets: [{ name: t, protocol: ssh, agent: a, recording: { input: yes-please } }]\n').ok).toBe(false);
  });
});

describe('decide() for writes from AI agents (a target mcpWrites)', () => {
  const withMcpWrites = policy(`
issuer: ${TEST_ISSUER}
targets:
  - { name: dev-db, protocol: postgres, agent: a, mcpWrites: { approve: { groups: [dba], timeoutSeconds: 600 } } }
  - { name: other-db, protocol: postgres, agent: a }
reviewers: { dba: [{ subject: bob, email: bob@example.com }] }
rules:
  - { name: eng-writes, targets: ['*'], subjects: { groups: [eng] }, actions: { read: allow, write: allow, ddl: allow, admin: deny } }
`);
  const eng = identity('eve', ['eng']);

  it('holds an MCP write the rules allow for approval by the target mcpWrites reviewers', () => {
    expect(decide(eng, 'dev-db', action('write', { via: 'mcp' }), withMcpWrites)).toMatchObject({ kind: 'approve', rule: 'mcpWrites', approval: { groups: ['dba'], min: 1, timeoutSeconds: 600 } });
    expect(decide(eng, 'dev-db', action('ddl', { via: 'mcp' }), withMcpWrites)).toMatchObject({ kind: 'approve', rule: 'mcpWrites' });
  });

  it('leaves reads, human writes, denials and targets without mcpWrites as the rules say', () => {
    expect(decide(eng, 'dev-db', action('read', { via: 'mcp' }), withMcpWrites)).toMatchObject({ kind: 'allow', rule: 'eng-writes' });
    expect(decide(eng, 'dev-db', action('write'), withMcpWrites)).toMatchObject({ kind: 'allow', rule: 'eng-writes' });
    expect(decide(eng, 'dev-db', action('admin', { via: 'mcp' }), withMcpWrites)).toMatchObject({ kind: 'deny' });
    expect(decide(eng, 'other-db', action('write', { via: 'mcp' }), withMcpWrites)).toMatchObject({ kind: 'allow' });
  });
});
