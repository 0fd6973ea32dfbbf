import { parse as parseYaml } from 'yaml';
import { EXEC_CREDENTIAL_MARGIN_SECONDS, execCredential, withKubeconfigEntry } from '../../../cli/kube-credentials';

const jwtWith = (claims: Record<string, unknown>): string => ['{"alg":"ES256"}', JSON.stringify(claims), 'sig'].map((p, i) => (i < 2 ? Buffer.from(p).toString('base64url') : p)).join('.');

describe('the kubectl exec credential', () => {
  it('carries the token and expires it just before the token does, so that kubectl caches it and asks again in time', () => {
    const exp = 2_000_000_000;
    const credential = JSON.parse(execCredential(jwtWith({ sub: 'alice', exp }))) as { apiVersion: string; kind: string; status: { token: string; expirationTimestamp: string } };
    expect(credential.apiVersion).toBe('client.authentication.k8s.io/v1');
    expect(credential.kind).toBe('ExecCredential');
    expect(credential.status.token).toBe(jwtWith({ sub: 'alice', exp }));
    expect(Date.parse(credential.status.expirationTimestamp)).toBe((exp - EXEC_CREDENTIAL_MARGIN_SECONDS) * 1000);
    // RFC 3339 without fractions, as client-go parses it.
    expect(credential.status.expirationTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });

  it('leaves the expiry out for a token without exp (kubectl then runs the plugin for every request)', () => {
    const credential = JSON.parse(execCredential('opaque')) as { status: Record<string, unknown> };
    expect(credential.status).toEqual({ token: 'opaque' });
  });
});

describe('a kubeconfig entry for an agent target', () => {
  const entry = { name: 'demo-k8s', server: 'https://127.0.0.1:6443', caPem: '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n', command: '/usr/bin/node', args: ['/opt/twokey/cli/bin.cjs', 'token', '--kube'] };

  it('pins the CA, names the exec plugin and makes its context current', () => {
    const doc = parseYaml(withKubeconfigEntry('', entry, true)) as Record<string, any>;
    expect(doc['current-context']).toBe('demo-k8s');
    expect(doc.clusters).toEqual([{ name: 'demo-k8s', cluster: { server: 'https://127.0.0.1:6443', 'certificate-authority-data': Buffer.from(entry.caPem).toString('base64') } }]);
    expect(doc.users[0].user.exec).toMatchObject({ apiVersion: 'client.authentication.k8s.io/v1', command: '/usr/bin/node', args: entry.args });
    expect(doc.contexts).toEqual([{ name: 'demo-k8s', context: { cluster: 'demo-k8s', user: 'demo-k8s' } }]);
  });

  it('keeps the other entries of an existing kubeconfig and replaces its own', () => {
    const existing = withKubeconfigEntry(withKubeconfigEntry('', { ...entry, name: 'prod' }, true), { ...entry, server: 'https://old:1' }, false);
    const doc = parseYaml(withKubeconfigEntry(existing, entry, false)) as Record<string, any>;
    expect(doc.clusters.map((c: { name: string }) => c.name)).toEqual(['prod', 'demo-k8s']);
    expect(doc.clusters[1].cluster.server).toBe('https://127.0.0.1:6443');
    expect(doc['current-context']).toBe('prod');
  });
});
