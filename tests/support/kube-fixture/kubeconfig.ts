import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';

export interface KubeconfigOptions {
  url: string;
  caPem: string;
  token: string;
  namespace?: string;
  /** Context, cluster and user name (default `fixture`). */
  name?: string;
}

/** A kubeconfig whose single context points at `url`, pins `caPem` and sends `token`. */
export function kubeconfigYaml(o: KubeconfigOptions): string {
  const name = o.name ?? 'fixture';
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster: { server: o.url, 'certificate-authority-data': Buffer.from(o.caPem).toString('base64') } }],
    users: [{ name, user: { token: o.token } }],
    contexts: [{ name, context: { cluster: name, user: name, namespace: o.namespace ?? 'default' } }],
    'current-context': name,
    preferences: {},
  });
}

/** Writes the kubeconfig to a new temporary directory (or `path`) and returns its path. */
export function writeKubeconfig(o: KubeconfigOptions & { path?: string }): string {
  const path = o.path ?? join(mkdtempSync(join(tmpdir(), 'tk-kubeconfig-')), 'config');
  writeFileSync(path, kubeconfigYaml(o), { mode: 0o600 });
  return path;
}
