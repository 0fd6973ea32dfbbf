import { decide, type Action } from '../../core/policy/decide';
import { parsePolicy } from '../../core/policy/parse';
import type { PolicyDocument } from '../../core/policy/schema';
import { classifyCommand } from '../../core/ssh/classify-command';
import { withDevIssuer } from '../../local/oidc/dev-issuer';
import { identity, TEST_ISSUER } from '../support/identities';

const POLICY = `
targets:
  - { name: host, protocol: ssh, agent: a }
rules:
  - name: ops
    targets: [host]
    subjects: { groups: [ops] }
    actions: { read: allow, write: allow, unknown: allow }
blocks:
  - name: no-wipe
    targets: [host]
    commands: ['rm -rf /*', 'shutdown*']
  - name: no-writes-in-etc
    targets: [host]
    paths: ['/etc/*']
`;

function policy(): PolicyDocument {
  const parsed = parsePolicy(withDevIssuer(POLICY, TEST_ISSUER));
  if (!parsed.ok) throw parsed.error;
  return parsed.value;
}

const doc = policy();
const ops = identity('olga', ['ops']);

/** What the relay asks decide(): the classifier's class, each simple command and the paths. */
function verdict(command: string): string {
  const classified = classifyCommand(command, { pty: false });
  const action: Action = { class: classified.class, ssh: { command, commands: classified.commands, paths: classified.paths } };
  const decision = decide(ops, 'host', action, doc);
  return decision.kind === 'deny' ? `deny: ${decision.reason}` : decision.kind;
}

describe('policy blocks on SSH commands', () => {
  it.each<[string, string]>([
    ['rm -rf /', 'deny: blocked by no-wipe (rm -rf /)'],
    ['ls; rm -rf /var', 'deny: blocked by no-wipe (rm -rf /var)'],
    ['sudo -n rm -rf /srv', 'deny: blocked by no-wipe (rm -rf /srv)'],
    ["bash -c 'uptime && rm -rf \"/home\"'", 'deny: blocked by no-wipe (rm -rf /home)'],
    ['find /srv -exec rm -rf /tmp/x \\;', 'deny: blocked by no-wipe (rm -rf /tmp/x)'],
    ['echo $(shutdown -r now)', 'deny: blocked by no-wipe (shutdown -r now)'],
    ['cat x > /etc/motd', 'deny: blocked by no-writes-in-etc (/etc/motd)'],
    ['scp -t /etc/cron.d', 'deny: blocked by no-writes-in-etc (/etc/cron.d)'],
    ['rm -rf ./build', 'allow'],
    ['uptime', 'allow'],
  ])('decides %j: %s', (command, expected) => {
    expect(verdict(command)).toBe(expected);
  });

  it('matches a block across a newline inside a quoted argument', () => {
    expect(verdict("rm -rf '/\nx'")).toBe("deny: blocked by no-wipe (rm -rf /\nx)");
  });
});
