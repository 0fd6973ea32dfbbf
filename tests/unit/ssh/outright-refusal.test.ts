import type { AgentContext } from '../../../agent/agent';
import { sessionMasking } from '../../../agent/sessions/session-masking';
import type { SshEvent } from '../../../agent/ssh/events';
import { outrightRefusal } from '../../../agent/ssh/judge';
import { decide, type Action } from '../../../core/policy/decide';
import { parsePolicy } from '../../../core/policy/parse';
import type { PolicyMask } from '../../../core/policy/schema';
import { withDevIssuer } from '../../../local/oidc/dev-issuer';
import { identity, TEST_ISSUER } from '../../support/identities';

const POLICY = `
targets:
  - { name: host, protocol: ssh, agent: a }
reviewers: { ops: [{ subject: bob, email: bob@example.com }] }
rules:
  - name: ops
    targets: [host]
    subjects: { groups: [ops] }
    actions: { read: allow, write: allow }
  - name: held
    targets: [host]
    subjects: { groups: [contractors] }
    actions: { read: allow, write: { approve: { groups: [ops] } } }
blocks:
  - name: no-writes-in-etc
    targets: [host]
    paths: ['/etc/**']
`;

const parsed = parsePolicy(withDevIssuer(POLICY, TEST_ISSUER));
if (!parsed.ok) throw parsed.error;
const doc = parsed.value;
const MASKS = [{ name: 'mail', targets: ['host'], subjects: { groups: ['ops', 'contractors'] }, detectors: ['email'] }] as unknown as PolicyMask[];

/** The decisions a session of `groups` records, and outrightRefusal's deps for it (the real decide() on the policy above). */
function session(groups: string[]): { recorded: SshEvent[]; deps: Parameters<typeof outrightRefusal>[0] } {
  const recorded: SshEvent[] = [];
  const agent = { decide: (who, target, action) => decide(who, target, action, doc) } as Pick<AgentContext, 'decide'> as AgentContext;
  const started = { identity: identity('olga', groups), record: (e: SshEvent) => recorded.push(e) } as unknown as Parameters<typeof outrightRefusal>[0]['session'];
  return { recorded, deps: { agent, target: 'host', session: started, masking: sessionMasking(MASKS, undefined), channel: undefined } };
}

const upload = (path: string): Action => ({ class: 'write', ssh: { subsystem: 'sftp', paths: [path] } });

describe('an SFTP or scp upload refused outright', () => {
  it('refuses an upload a block denies, with its reason, and records that one decision with the text masked', () => {
    const { recorded, deps } = session(['ops']);
    expect(outrightRefusal(deps, upload('/etc/cron.d/x'), 'SFTP open /etc/cron.d/x for ann@example.com')).toBe('twokey: blocked by no-writes-in-etc (/etc/cron.d/x)');
    expect(recorded).toEqual([{ e: 'decision', text: expect.not.stringContaining('ann@example.com'), class: 'write', decision: 'deny', rule: 'no-writes-in-etc', reason: 'blocked by no-writes-in-etc (/etc/cron.d/x)' }]);
  });

  it('refuses nothing the policy allows or holds for approval, and records nothing: the upload is judged at its end, with its bytes', () => {
    const allowed = session(['ops']);
    const held = session(['contractors']);
    expect(outrightRefusal(allowed.deps, upload('/srv/a'), 'SFTP open /srv/a')).toBeUndefined();
    expect(outrightRefusal(held.deps, upload('/srv/a'), 'SFTP open /srv/a')).toBeUndefined();
    expect([...allowed.recorded, ...held.recorded]).toEqual([]);
  });

  it('refuses a caller no rule grants writes', () => {
    const { recorded, deps } = session(['visitors']);
    expect(outrightRefusal(deps, upload('/srv/a'), 'SFTP open /srv/a')).toBe('twokey: no rule grants write on host');
    expect(recorded).toHaveLength(1);
  });
});
