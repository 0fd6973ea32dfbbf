import type { JsonObject } from './json';
import type { FixtureState } from './state';

/** The namespaces every cluster starts with. */
export const SYSTEM_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];

const labels = (app: string): JsonObject => ({ app });

/**
 * A small application in `default`: a `web` deployment and service, a `web-1` pod with logs, a
 * `db-0` pod whose env holds a password, the `db-credentials` Secret and the `app-config` ConfigMap
 * (the values a proxy must mask). Names are fixed so tests and the demo can refer to them.
 */
export const DEMO_OBJECTS: JsonObject[] = [
  {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace: 'default', labels: labels('web') },
    spec: { replicas: 2, selector: { matchLabels: labels('web') }, template: { metadata: { labels: labels('web') }, spec: { containers: [{ name: 'web', image: 'nginx:1.27', ports: [{ containerPort: 8080 }] }] } } },
  },
  { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default', labels: labels('web') }, spec: { selector: labels('web'), ports: [{ port: 80, targetPort: 8080 }] } },
  { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web-1', namespace: 'default', labels: labels('web') }, spec: { containers: [{ name: 'web', image: 'nginx:1.27', ports: [{ containerPort: 8080 }] }] } },
  {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'db-0', namespace: 'default', labels: labels('db') },
    spec: { containers: [{ name: 'postgres', image: 'postgres:17', env: [{ name: 'POSTGRES_PASSWORD', value: 'pg-Pa55word-1234' }], ports: [{ containerPort: 5432 }] }] },
  },
  { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db-credentials', namespace: 'default' }, type: 'Opaque', data: { username: Buffer.from('admin').toString('base64'), password: Buffer.from('s3cr3t-Pa55w0rd').toString('base64') } },
  { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'app-config', namespace: 'default' }, data: { LOG_LEVEL: 'info', DATABASE_URL: 'postgres://app:hunter2-db-pass@db:5432/app' } },
];

export const DEMO_WEB_LOG = ['starting web server on :8080', 'GET /healthz 200', 'GET / 200'];

export function seed(state: FixtureState, demo: boolean): void {
  for (const name of SYSTEM_NAMESPACES) state.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  if (!demo) return;
  for (const object of DEMO_OBJECTS) state.put(object);
  state.appendLog('default', 'web-1', `${DEMO_WEB_LOG.join('\n')}\n`);
  state.files.set('/secret', 'the-file-secret\n');
}
