import { decide, type Action } from '../../../core/policy/decide';
import { parsePolicy } from '../../../core/policy/parse';
import { withDevIssuer } from '../../../local/oidc/dev-issuer';
import { identity, TEST_ISSUER } from '../../support/identities';

const POLICY = `
targets:
  - { name: host, protocol: ssh, agent: a }
reviewers: { dba: [{ subject: bob, email: bob@example.com }] }
rules:
  - name: support
    targets: [host]
    subjects: { groups: [support] }
    actions: { read: allow, write: deny }
    forwards: ['db.internal:5432', '127.0.0.1:*']
  - name: ops
    targets: [host]
    subjects: { groups: [ops] }
    actions: { read: allow, shell: { approve: { groups: [dba] } } }
  - name: forward-denied
    targets: [host]
    subjects: { groups: [contractor] }
    actions: { read: deny }
    forwards: ['*']
`;

const parsed = parsePolicy(withDevIssuer(POLICY, TEST_ISSUER));
if (!parsed.ok) throw parsed.error;
const doc = parsed.value;
const kind = (groups: string[], action: Action): string => {
  const d = decide(identity('someone', groups), 'host', action, doc);
  return d.kind === 'deny' ? `deny: ${d.reason}` : d.kind;
};

describe('decide() for SSH shells and forwards', () => {
  it.each([
    ['a named destination', ['support'], 'db.internal:5432', 'allow'],
    ['a destination a glob names', ['support'], '127.0.0.1:8080', 'allow'],
    ['a destination no rule names', ['support'], 'db.internal:22', 'deny: no rule grants forwarding to db.internal:22 on host'],
    ['any destination for a rule without forwards, even with read allowed', ['ops'], '127.0.0.1:80', 'deny: no rule grants forwarding to 127.0.0.1:80 on host'],
    ['a destination named by a rule whose read decision denies', ['contractor'], '127.0.0.1:80', 'deny: read denied by rule forward-denied'],
  ])('forwarding to %s', (_name, groups, destination, expected) => {
    expect(kind(groups, { class: 'read', ssh: { forward: destination } })).toBe(expected);
  });

  it('decides a shell only by a rule that names the class (read allow is not enough)', () => {
    expect(kind(['support'], { class: 'shell' })).toBe('deny: no rule grants shell on host');
    expect(kind(['ops'], { class: 'shell' })).toBe('approve');
  });

  it('leaves a read without a forward to every rule as before', () => {
    expect(kind(['ops'], { class: 'read', ssh: { command: 'uptime' } })).toBe('allow');
  });
});
