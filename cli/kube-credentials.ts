import { stringify as toYaml, parse as parseYaml } from 'yaml';

/** kubectl refreshes an exec credential this long before its token expires (so that no request carries an expiring token). */
export const EXEC_CREDENTIAL_MARGIN_SECONDS = 30;
export const EXEC_CREDENTIAL_API_VERSION = 'client.authentication.k8s.io/v1';

/** The ExecCredential kubectl reads from an exec plugin: the token and when kubectl must ask again. */
export function execCredential(token: string): string {
  const exp = jwtExpiry(token);
  const expirationTimestamp = exp === undefined ? undefined : new Date((exp - EXEC_CREDENTIAL_MARGIN_SECONDS) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  return JSON.stringify({ apiVersion: EXEC_CREDENTIAL_API_VERSION, kind: 'ExecCredential', status: { token, ...(expirationTimestamp && { expirationTimestamp }) } });
}

/** A JWT's `exp` (seconds), read without verifying: only to tell kubectl how long to cache it (the agent verifies). */
function jwtExpiry(token: string): number | undefined {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp?: unknown };
    return typeof payload.exp === 'number' ? payload.exp : undefined;
  } catch {
    return undefined;
  }
}

export interface KubeconfigEntry {
  /** The entry's cluster, user and context name. */
  readonly name: string;
  /** https://host:port of the agent's listener. */
  readonly server: string;
  /** The listener's CA (PEM), pinned. */
  readonly caPem: string;
  /** The exec plugin: the program and its arguments (`twokey token --kube ...`). */
  readonly command: string;
  readonly args: readonly string[];
}

interface Named {
  name: string;
  [k: string]: unknown;
}
interface Kubeconfig {
  apiVersion?: string;
  kind?: string;
  clusters?: Named[];
  users?: Named[];
  contexts?: Named[];
  'current-context'?: string;
  [k: string]: unknown;
}

/** A kubeconfig (YAML) with the entry added, replacing entries of the same name; `existing` is another kubeconfig's text or empty. */
export function withKubeconfigEntry(existing: string, entry: KubeconfigEntry, makeCurrent: boolean): string {
  const doc = ((existing.trim() ? parseYaml(existing) : undefined) ?? {}) as Kubeconfig;
  const put = (list: Named[] | undefined, item: Named): Named[] => [...(list ?? []).filter((i) => i.name !== item.name), item];
  doc.apiVersion ??= 'v1';
  doc.kind ??= 'Config';
  doc.clusters = put(doc.clusters, { name: entry.name, cluster: { server: entry.server, 'certificate-authority-data': Buffer.from(entry.caPem).toString('base64') } });
  doc.users = put(doc.users, {
    name: entry.name,
    user: { exec: { apiVersion: EXEC_CREDENTIAL_API_VERSION, command: entry.command, args: [...entry.args], interactiveMode: 'IfAvailable', provideClusterInfo: false } },
  });
  doc.contexts = put(doc.contexts, { name: entry.name, context: { cluster: entry.name, user: entry.name } });
  if (makeCurrent || !doc['current-context']) doc['current-context'] = entry.name;
  return toYaml(doc);
}
