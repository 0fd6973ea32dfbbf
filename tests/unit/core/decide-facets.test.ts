import { decide, type Action } from '../../../core/policy/decide';
import { parsePolicy } from '../../../core/policy/parse';
import type { PolicyDocument } from '../../../core/policy/schema';
import { withDevIssuer } from '../../../local/oidc/dev-issuer';
import { identity, TEST_ISSUER } from '../../support/identities';

const POLICY = `
targets:
  - { name: cluster, protocol: kubernetes, agent: a }
  - { name: host, protocol: ssh, agent: a }
  - { name: db, protocol: postgres, agent: a }
rules:
  - name: ops
    targets: ['*']
    subjects: { groups: [ops] }
    actions: { read: allow, write: allow, admin: allow }
blocks:
  - name: no-secrets
    targets: [cluster]
    requests: [{ verbs: [get, list, watch], resources: [secrets] }]
  - name: no-exec-in-prod
    targets: [cluster]
    requests: [{ resources: [pods], namespaces: ['prod-*'], subresources: [exec] }]
  - name: no-deployment-deletes
    targets: [cluster]
    requests: [{ verbs: [delete], resources: [apps/deployments] }]
  - name: no-shutdown
    targets: [host]
    commands: ['shutdown*', 'rm -rf /*']
  - name: no-sftp-into-etc
    targets: [host]
    paths: ['/etc/*']
  - name: no-drop
    targets: [db]
    statements: [drop]
`;

function policy(): PolicyDocument {
  const parsed = parsePolicy(withDevIssuer(POLICY, TEST_ISSUER));
  if (!parsed.ok) throw parsed.error;
  return parsed.value;
}

const ops = identity('olga', ['ops']);
const doc = policy();
const verdict = (target: string, action: Action): string => {
  const d = decide(ops, target, action, doc);
  return d.kind === 'deny' ? `deny: ${d.reason}` : d.kind;
};

describe('decide() with protocol facets', () => {
  it.each<[string, Action, string]>([
    ['reading a secret', { class: 'read', kubernetes: { verb: 'get', group: '', resource: 'secrets', namespace: 'default', name: 'db' } }, 'deny: blocked by no-secrets (get secrets)'],
    ['reading a config map', { class: 'read', kubernetes: { verb: 'get', group: '', resource: 'configmaps', namespace: 'default' } }, 'allow'],
    ['exec into a pod in prod', { class: 'admin', kubernetes: { verb: 'create', group: '', resource: 'pods', namespace: 'prod-eu', name: 'web-1', subresource: 'exec' } }, 'deny: blocked by no-exec-in-prod (create pods/exec)'],
    ['exec into a pod in staging', { class: 'admin', kubernetes: { verb: 'create', group: '', resource: 'pods', namespace: 'staging', name: 'web-1', subresource: 'exec' } }, 'allow'],
    ['deleting a deployment', { class: 'write', kubernetes: { verb: 'delete', group: 'apps', resource: 'deployments', namespace: 'default', name: 'web' } }, 'deny: blocked by no-deployment-deletes (delete apps/deployments)'],
    ['scaling a deployment', { class: 'write', kubernetes: { verb: 'patch', group: 'apps', resource: 'deployments', namespace: 'default', name: 'web', subresource: 'scale' } }, 'allow'],
  ])('Kubernetes: %s', (_what, action, expected) => {
    expect(verdict('cluster', action)).toBe(expected);
  });

  it.each<[string, Action, string]>([
    ['shutdown', { class: 'admin', ssh: { command: 'shutdown -h now' } }, 'deny: blocked by no-shutdown (shutdown -h now)'],
    ['uptime', { class: 'read', ssh: { command: 'uptime' } }, 'allow'],
    ['an SFTP write into /etc', { class: 'write', ssh: { subsystem: 'sftp', paths: ['/tmp/a', '/etc/passwd'] } }, 'deny: blocked by no-sftp-into-etc (/etc/passwd)'],
    ['an SFTP write into /tmp', { class: 'write', ssh: { subsystem: 'sftp', paths: ['/tmp/a'] } }, 'allow'],
  ])('SSH: %s', (_what, action, expected) => {
    expect(verdict('host', action)).toBe(expected);
  });

  it('applies a block only to the facets it names: a Postgres block does not stop a Kubernetes request on another target', () => {
    expect(verdict('db', { class: 'ddl', statements: ['drop'] })).toBe('deny: blocked by no-drop (drop)');
    expect(verdict('cluster', { class: 'write', kubernetes: { verb: 'delete', group: '', resource: 'configmaps' } })).toBe('allow');
  });

  it('keeps the new facets out of a parsed block that does not name them (agents from before them accept the document)', () => {
    const postgresOnly = doc.blocks.find((b) => b.name === 'no-drop');
    expect(Object.keys(postgresOnly ?? {}).sort()).toEqual(['functions', 'name', 'statements', 'tables', 'targets']);
  });

  it('refuses a block that names no facet, and a Kubernetes request entry that names nothing', () => {
    const empty = parsePolicy(withDevIssuer(`${POLICY}  - { name: nothing, targets: [host] }\n`, TEST_ISSUER));
    const emptyRequest = parsePolicy(withDevIssuer(`${POLICY}  - { name: vague, targets: [cluster], requests: [{}] }\n`, TEST_ISSUER));
    expect(empty.ok).toBe(false);
    expect(emptyRequest.ok).toBe(false);
  });
});
