import { request } from 'node:https';
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { WebSocket } from 'ws';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKubeFixture, writeKubeconfig, type KubeFixture } from '../support/kube-fixture';
import { PROMPT } from '../support/kube-fixture/streams/shell';
import { kubectl, kubectlEnv, KUBECTL, spawnKubectl } from '../support/kubectl';
import { underTerminal } from '../support/terminal';

const TOKENS = { 'read-token': { user: 'system:serviceaccount:twokey:reader', access: 'read' as const }, 'write-token': { user: 'system:serviceaccount:twokey:writer', access: 'write' as const } };

let fixture: KubeFixture;
let writer: NodeJS.ProcessEnv;
let reader: NodeJS.ProcessEnv;

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTPS request straight at the fixture (for what kubectl never sends). */
function raw(method: string, path: string, headers: Record<string, string>, body?: string): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, fixture.url);
    const req = request(url, { method, ca: fixture.caPem, headers: { authorization: 'Bearer write-token', ...headers } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function manifest(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'tk-manifest-'));
  const file = join(dir, 'manifest.yaml');
  writeFileSync(file, text);
  return file;
}

beforeAll(async () => {
  fixture = await startKubeFixture({ tokens: TOKENS, bookmarkIntervalMs: 200 });
  writer = kubectlEnv(writeKubeconfig({ url: fixture.url, caPem: fixture.caPem, token: 'write-token' }));
  reader = kubectlEnv(writeKubeconfig({ url: fixture.url, caPem: fixture.caPem, token: 'read-token' }));
});

afterAll(async () => {
  await fixture.stop();
});

describe('discovery and reads', () => {
  it('reports a 1.32 server version to kubectl', async () => {
    const out = await kubectl(writer, ['version', '-o', 'json']);
    expect(out.code).toBe(0);
    expect(JSON.parse(out.stdout).serverVersion.gitVersion).toBe('v1.32.4');
  });

  it('resolves short names, groups and the "all" category through discovery', async () => {
    const out = await kubectl(writer, ['get', 'all']);
    expect(out.stderr).toBe('');
    expect(out.stdout).toMatch(/pod\/web-1\s+1\/1\s+Running/);
    expect(out.stdout).toMatch(/service\/web\s+ClusterIP\s+10\.96\.\d+\.\d+\s+<none>\s+80\/TCP/);
    expect(out.stdout).toMatch(/deployment\.apps\/web\s+2\/2\s+2\s+2/);
    const short = await kubectl(writer, ['get', 'po,cm,deploy', '-o', 'name']);
    expect(short.stdout.split('\n')).toEqual(expect.arrayContaining(['pod/db-0', 'configmap/app-config', 'deployment.apps/web']));
  });

  it('serves the aggregated discovery document when asked and the legacy one otherwise', async () => {
    const aggregated = await raw('GET', '/apis', { accept: 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json' });
    expect(aggregated.headers['content-type']).toBe('application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList');
    const deployments = JSON.parse(aggregated.body).items[0].versions[0].resources.find((r: { resource: string }) => r.resource === 'deployments');
    expect(deployments.subresources.map((s: { subresource: string }) => s.subresource)).toEqual(['scale', 'status']);
    const legacy = await raw('GET', '/apis', { accept: 'application/json' });
    expect(JSON.parse(legacy.body).kind).toBe('APIGroupList');
  });

  it('lists pods as a Table with the columns of the real printers, wide columns at priority 1', async () => {
    const out = await kubectl(writer, ['get', 'pods', '-o', 'wide']);
    expect(out.stdout.split('\n')[0]).toMatch(/^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE\s+NOMINATED NODE\s+READINESS GATES$/);
    const table = await raw('GET', '/api/v1/namespaces/default/secrets', { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json' });
    expect(table.headers['content-type']).toBe('application/json;as=Table;g=meta.k8s.io;v=v1');
    const body = JSON.parse(table.body);
    expect(body.columnDefinitions.map((c: { name: string }) => c.name)).toEqual(['Name', 'Type', 'Data', 'Age']);
    expect(body.rows[0].cells.slice(0, 3)).toEqual(['db-credentials', 'Opaque', 2]);
    expect(body.rows[0].object).toEqual(expect.objectContaining({ kind: 'PartialObjectMetadata' }));
  });

  it('shows a Secret in -o yaml, -o json and -o jsonpath as stored (base64)', async () => {
    const yaml = await kubectl(writer, ['get', 'secret', 'db-credentials', '-o', 'yaml']);
    expect(yaml.stdout).toContain(`password: ${Buffer.from('s3cr3t-Pa55w0rd').toString('base64')}`);
    const json = JSON.parse((await kubectl(writer, ['get', 'secret', 'db-credentials', '-o', 'json'])).stdout);
    expect(json).toEqual(expect.objectContaining({ kind: 'Secret', apiVersion: 'v1', type: 'Opaque' }));
    const path = await kubectl(writer, ['get', 'secret', 'db-credentials', '-o', 'jsonpath={.data.password}']);
    expect(Buffer.from(path.stdout, 'base64').toString()).toBe('s3cr3t-Pa55w0rd');
  });

  it('describes a pod, a deployment and a secret (with the events and replica sets describe lists)', async () => {
    const pod = await kubectl(writer, ['describe', 'pod', 'db-0']);
    expect(pod.stdout).toMatch(/Status:\s+Running/);
    expect(pod.stdout).toMatch(/POSTGRES_PASSWORD:\s+pg-Pa55word-1234/);
    const deployment = await kubectl(writer, ['describe', 'deployment', 'web']);
    expect(deployment.stdout).toMatch(/Replicas:\s+2 desired \| 2 updated \| 2 total \| 2 available/);
    const secret = await kubectl(writer, ['describe', 'secret', 'db-credentials']);
    expect(secret.stdout).toMatch(/password:\s+15 bytes/);
  });

  it('explains served kinds from the OpenAPI v3 documents', async () => {
    const out = await kubectl(writer, ['explain', 'deployment.spec.replicas']);
    expect(out.stdout).toContain('FIELD: replicas <integer>');
    const containers = await kubectl(writer, ['explain', 'pods.spec.containers.image']);
    expect(containers.stdout).toContain('Container image name.');
  });

  it('serves /openapi/v2 as gnostic protobuf to clients that ask for it (kubectl explain --output=plaintext-openapiv2, kubectl up to 1.28)', async () => {
    const out = await kubectl(writer, ['explain', '--output=plaintext-openapiv2', 'deployment.spec.replicas']);
    expect(out.stdout).toContain('FIELD:    replicas <integer>');
    expect(fixture.state.requests.some((r) => r.path === '/openapi/v2' && r.accept?.startsWith('application/com.github.proto-openapi.spec.v2') && r.status === 200)).toBe(true);
    const json = await raw('GET', '/openapi/v2', { accept: 'application/json' });
    expect(JSON.parse(json.body).swagger).toBe('2.0');
  });

  it('pages a list with limit and continue, and filters by label and field selectors', async () => {
    const first = JSON.parse((await raw('GET', '/api/v1/namespaces?limit=2', { accept: 'application/json' })).body);
    expect(first.items.map((n: { metadata: { name: string } }) => n.metadata.name)).toEqual(['default', 'kube-node-lease']);
    expect(first.metadata.remainingItemCount).toBe(2);
    const next = JSON.parse((await raw('GET', `/api/v1/namespaces?limit=2&continue=${first.metadata.continue}`, { accept: 'application/json' })).body);
    expect(next.items.map((n: { metadata: { name: string } }) => n.metadata.name)).toEqual(['kube-public', 'kube-system']);
    const labelled = await kubectl(writer, ['get', 'pods', '-l', 'app in (db)', '-o', 'name']);
    expect(labelled.stdout.trim()).toBe('pod/db-0');
    const fielded = await kubectl(writer, ['get', 'pods', '--field-selector', 'metadata.name=web-1', '-o', 'name']);
    expect(fielded.stdout.trim()).toBe('pod/web-1');
    const unknown = await kubectl(writer, ['get', 'pods', '--field-selector', 'spec.color=red']);
    expect(unknown.stderr).toContain('field label not supported: spec.color');
  });

  it('answers a protobuf-only Accept with 406 and a protobuf-then-JSON Accept with JSON', async () => {
    const only = await raw('GET', '/api/v1/namespaces/default/pods', { accept: 'application/vnd.kubernetes.protobuf' });
    expect(only.status).toBe(406);
    expect(JSON.parse(only.body)).toEqual(expect.objectContaining({ kind: 'Status', reason: 'NotAcceptable', code: 406 }));
    const both = await raw('GET', '/api/v1/namespaces/default/pods', { accept: 'application/vnd.kubernetes.protobuf, application/json' });
    expect(both.status).toBe(200);
    expect(both.headers['content-type']).toBe('application/json');
    expect(JSON.parse(both.body).kind).toBe('PodList');
  });
});

describe('writes', () => {
  const CONFIG = (value: string, image: string): string => `apiVersion: v1
kind: ConfigMap
metadata:
  name: applied
data:
  mode: "${value}"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  replicas: 1
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
      - name: api
        image: ${image}
`;

  it('applies client-side: creates, then patches with the last-applied configuration', async () => {
    const created = await kubectl(writer, ['apply', '-f', manifest(CONFIG('one', 'busybox:1.36'))]);
    expect(created.stdout).toBe('configmap/applied created\ndeployment.apps/api created\n');
    const changed = await kubectl(writer, ['apply', '-f', manifest(CONFIG('two', 'busybox:1.37'))]);
    expect(changed.stdout).toBe('configmap/applied configured\ndeployment.apps/api configured\n');
    const deployment = fixture.state.get('apps/v1', 'Deployment', 'default', 'api');
    expect(deployment?.metadata).toEqual(expect.objectContaining({ generation: 2, annotations: expect.objectContaining({ 'kubectl.kubernetes.io/last-applied-configuration': expect.stringContaining('busybox:1.37') }) }));
    expect(fixture.state.requests.some((r) => r.method === 'PATCH' && r.contentType === 'application/strategic-merge-patch+json' && r.path.endsWith('/deployments/api'))).toBe(true);
  });

  it('applies server-side with a field manager, and refuses to take a field another manager set unless forced', async () => {
    const file = manifest(CONFIG('three', 'busybox:1.38').replace('name: applied', 'name: ssa').replace(/name: api$/m, 'name: ssa-api').replace(/app: api/g, 'app: ssa'));
    expect((await kubectl(writer, ['apply', '--server-side', '-f', file])).stdout).toBe('configmap/ssa serverside-applied\ndeployment.apps/ssa-api serverside-applied\n');
    expect(fixture.state.requests.some((r) => r.contentType === 'application/apply-patch+yaml' && r.query.includes('fieldManager=kubectl'))).toBe(true);
    expect((await kubectl(writer, ['scale', 'deployment', 'ssa-api', '--replicas=3'])).stdout).toBe('deployment.apps/ssa-api scaled\n');
    const conflict = await kubectl(writer, ['apply', '--server-side', '-f', file]);
    expect(conflict.code).not.toBe(0);
    expect(conflict.stderr).toMatch(/Apply failed with 1 conflict: conflict with "kubectl[^"]*"[^:]*: \.spec\.replicas/);
    const forced = await kubectl(writer, ['apply', '--server-side', '--force-conflicts', '-f', file]);
    expect(forced.code).toBe(0);
    expect(fixture.state.get('apps/v1', 'Deployment', 'default', 'ssa-api')?.spec).toEqual(expect.objectContaining({ replicas: 1 }));
  });

  it('scales through the scale subresource and restarts a rollout by patching the template annotation', async () => {
    expect((await kubectl(writer, ['scale', 'deployment', 'web', '--replicas=4'])).stdout).toBe('deployment.apps/web scaled\n');
    expect(fixture.state.requests.some((r) => r.method === 'PATCH' && r.path === '/apis/apps/v1/namespaces/default/deployments/web/scale')).toBe(true);
    expect((await kubectl(writer, ['rollout', 'restart', 'deployment', 'web'])).stdout).toBe('deployment.apps/web restarted\n');
    const web = fixture.state.get('apps/v1', 'Deployment', 'default', 'web');
    expect(JSON.stringify(web?.spec)).toContain('kubectl.kubernetes.io/restartedAt');
    const status = await kubectl(writer, ['rollout', 'status', 'deployment', 'web', '--timeout=10s']);
    expect(status.stdout).toContain('deployment "web" successfully rolled out');
    expect((await kubectl(writer, ['get', 'deployment', 'web'])).stdout).toMatch(/web\s+4\/4\s+4\s+4/);
  });

  it('patches with JSON patch, merge patch and strategic merge patch', async () => {
    await kubectl(writer, ['apply', '-f', manifest('apiVersion: v1\nkind: ConfigMap\nmetadata: {name: patched}\ndata: {a: "1"}\n')]);
    expect((await kubectl(writer, ['patch', 'configmap', 'patched', '--type=json', '-p', '[{"op":"replace","path":"/data/a","value":"2"}]'])).code).toBe(0);
    expect((await kubectl(writer, ['patch', 'configmap', 'patched', '--type=merge', '-p', '{"data":{"b":"3"}}'])).code).toBe(0);
    expect((await kubectl(writer, ['patch', 'deployment', 'web', '-p', '{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.28"}]}}}}'])).code).toBe(0);
    expect(fixture.state.get('v1', 'ConfigMap', 'default', 'patched')?.data).toEqual({ a: '2', b: '3' });
    const containers = (fixture.state.get('apps/v1', 'Deployment', 'default', 'web') as { spec: { template: { spec: { containers: { name: string; image: string; ports: unknown[] }[] } } } }).spec.template.spec.containers;
    expect(containers).toEqual([expect.objectContaining({ name: 'web', image: 'nginx:1.28', ports: [{ containerPort: 8080, protocol: 'TCP' }] })]);
  });

  it('answers NotFound, AlreadyExists, Conflict and Invalid with Status errors kubectl prints', async () => {
    expect((await kubectl(writer, ['get', 'pod', 'nope'])).stderr).toBe('Error from server (NotFound): pods "nope" not found\n');
    const file = manifest('{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"twice"}}');
    expect((await kubectl(writer, ['create', '-f', file])).code).toBe(0);
    expect((await kubectl(writer, ['create', '-f', file])).stderr).toBe('Error from server (AlreadyExists): error when creating "' + file + '": configmaps "twice" already exists\n');
    const invalid = await kubectl(writer, ['create', '-f', manifest('{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Not_Valid"}}')]);
    expect(invalid.stderr).toContain('The ConfigMap "Not_Valid" is invalid: metadata.name: Invalid value: "Not_Valid": a lowercase RFC 1123 subdomain');
    const stale = await raw('PUT', '/api/v1/namespaces/default/configmaps/twice', { 'content-type': 'application/json' }, JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'twice', resourceVersion: '1' } }));
    expect(JSON.parse(stale.body)).toEqual({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Operation cannot be fulfilled on configmaps "twice": the object has been modified; please apply your changes to the latest version and try again', reason: 'Conflict', details: { name: 'twice', kind: 'configmaps' }, code: 409 });
  });

  it('decodes the protobuf bodies typed clients send (kubectl create secret, configmap, namespace, deployment)', async () => {
    expect((await kubectl(writer, ['create', 'secret', 'generic', 'created', '--from-literal=token=abc123'])).stdout).toBe('secret/created created\n');
    expect((await kubectl(writer, ['create', 'configmap', 'created', '--from-literal=k=v'])).stdout).toBe('configmap/created created\n');
    expect((await kubectl(writer, ['create', 'namespace', 'team-a'])).stdout).toBe('namespace/team-a created\n');
    expect((await kubectl(writer, ['create', 'deployment', 'made', '--image=nginx:1.27', '--replicas=0', '-n', 'team-a'])).stdout).toBe('deployment.apps/made created\n');
    expect(fixture.state.requests.filter((r) => r.method === 'POST' && r.contentType === 'application/vnd.kubernetes.protobuf').length).toBeGreaterThanOrEqual(4);
    expect(fixture.state.get('v1', 'Secret', 'default', 'created')?.data).toEqual({ token: Buffer.from('abc123').toString('base64') });
    expect(fixture.state.get('v1', 'ConfigMap', 'default', 'created')?.data).toEqual({ k: 'v' });
    expect(fixture.state.get('apps/v1', 'Deployment', 'team-a', 'made')?.spec).toEqual(expect.objectContaining({ replicas: 0, selector: { matchLabels: { app: 'made' } } }));
    const invalid = await kubectl(writer, ['create', 'configmap', 'Bad_Name']);
    expect(invalid.stderr).toContain('ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name"');
    const deleted = await kubectl(writer, ['delete', 'namespace', 'team-a']);
    expect(deleted.stdout).toBe('namespace "team-a" deleted\n');
    expect(fixture.state.get('apps/v1', 'Deployment', 'team-a', 'made')).toBeUndefined();
  });

  it('runs server-side dry runs without storing (apply --dry-run=server, diff) and deletes collections by selector', async () => {
    const file = manifest('apiVersion: v1\nkind: ConfigMap\nmetadata: {name: dry, labels: {batch: one}}\ndata: {a: "1"}\n');
    expect((await kubectl(writer, ['apply', '--dry-run=server', '-f', file])).stdout).toBe('configmap/dry created (server dry run)\n');
    expect(fixture.state.get('v1', 'ConfigMap', 'default', 'dry')).toBeUndefined();
    await kubectl(writer, ['apply', '-f', file]);
    const diff = await kubectl(writer, ['diff', '-f', manifest('apiVersion: v1\nkind: ConfigMap\nmetadata: {name: dry, labels: {batch: one}}\ndata: {a: "2"}\n')]);
    expect(diff.code).toBe(1);
    expect(diff.stdout).toMatch(/^-  a: "1"$/m);
    expect(diff.stdout).toMatch(/^\+  a: "2"$/m);
    expect(fixture.state.get('v1', 'ConfigMap', 'default', 'dry')?.data).toEqual({ a: '1' });
    fixture.state.put({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'dry-two', namespace: 'default', labels: { batch: 'one' } } });
    const gone = JSON.parse((await raw('DELETE', '/api/v1/namespaces/default/configmaps?labelSelector=batch%3Done', { accept: 'application/json' })).body);
    expect(gone.items.map((i: { metadata: { name: string } }) => i.metadata.name)).toEqual(['dry', 'dry-two']);
    expect(fixture.state.get('v1', 'ConfigMap', 'default', 'dry-two')).toBeUndefined();
  });

  it('deletes objects and waits for them to be gone', async () => {
    await kubectl(writer, ['apply', '-f', manifest('apiVersion: v1\nkind: ConfigMap\nmetadata: {name: doomed}\n')]);
    const out = await kubectl(writer, ['delete', 'configmap', 'doomed']);
    expect(out.stdout).toBe('configmap "doomed" deleted\n');
    expect(fixture.state.get('v1', 'ConfigMap', 'default', 'doomed')).toBeUndefined();
  });
});

describe('authentication and authorization', () => {
  it('refuses writes for the read token with a 403 Forbidden Status, and lets it read', async () => {
    const out = await kubectl(reader, ['delete', 'pod', 'web-1']);
    expect(out.stderr).toBe('Error from server (Forbidden): pods "web-1" is forbidden: User "system:serviceaccount:twokey:reader" cannot delete resource "pods" in API group "" in the namespace "default"\n');
    expect((await kubectl(reader, ['get', 'pod', 'web-1', '-o', 'name'])).stdout).toBe('pod/web-1\n');
    const scale = await kubectl(reader, ['scale', 'deployment', 'web', '--replicas=1']);
    expect(scale.stderr).toContain('cannot patch resource "deployments/scale" in API group "apps"');
  });

  it('answers kubectl auth can-i from the same rule (a SelfSubjectAccessReview any user may create)', async () => {
    expect(await kubectl(writer, ['auth', 'can-i', 'delete', 'pods'])).toEqual(expect.objectContaining({ code: 0, stdout: 'yes\n' }));
    expect(await kubectl(reader, ['auth', 'can-i', 'delete', 'pods'])).toEqual(expect.objectContaining({ code: 1, stdout: 'no\n' }));
    expect(await kubectl(reader, ['auth', 'can-i', 'watch', 'secrets', '-n', 'kube-system'])).toEqual(expect.objectContaining({ code: 0, stdout: 'yes\n' }));
    expect((await raw('GET', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {})).status).toBe(405);
  });

  it('answers 401 Unauthorized to an unknown token', async () => {
    const stranger = kubectlEnv(writeKubeconfig({ url: fixture.url, caPem: fixture.caPem, token: 'nobody' }));
    const out = await kubectl(stranger, ['get', 'pods']);
    expect(out.stderr).toContain('error: You must be logged in to the server');
    const direct = await raw('GET', '/api/v1/pods', { authorization: 'Bearer nobody' });
    expect(JSON.parse(direct.body)).toEqual({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 });
  });
});

describe('bad requests', () => {
  it('answers malformed, oversized and unknown-format bodies and bad paths with Status errors and keeps serving', async () => {
    const post = (contentType: string, body: string): Promise<RawResponse> => raw('POST', '/api/v1/namespaces/default/configmaps', { 'content-type': contentType }, body);
    expect(JSON.parse((await post('application/json', '{bad')).body)).toEqual(expect.objectContaining({ reason: 'BadRequest', code: 400 }));
    const huge = await post('application/json', `{"data":{"k":"${'a'.repeat(4 * 1024 * 1024)}"}}`);
    expect(huge.status).toBe(413);
    expect(huge.headers.connection).toBe('close');
    expect(JSON.parse((await post('text/plain', 'x')).body)).toEqual(expect.objectContaining({ reason: 'UnsupportedMediaType', code: 415 }));
    expect((await raw('GET', '/api/v1/namespaces/%ZZ/pods', {})).status).toBe(400);
    expect(JSON.parse((await raw('GET', '/api/v1/namespaces/default/pods?labelSelector=a%20in%20(((', {})).body).reason).toBe('BadRequest');
    expect(JSON.parse((await raw('GET', '/apis/batch/v1/jobs', {})).body)).toEqual(expect.objectContaining({ reason: 'NotFound', code: 404 }));
    expect(await raw('GET', '/metrics-nope', {})).toEqual(expect.objectContaining({ status: 404, body: '404 page not found\n' }));
    const impersonating = await raw('GET', '/api/v1/pods', { 'impersonate-user': 'admin' });
    expect(JSON.parse(impersonating.body).message).toBe('users "admin" is forbidden: User "system:serviceaccount:twokey:writer" cannot impersonate resource "users" in API group "" at the cluster scope');
    expect((await kubectl(writer, ['get', 'pods', '-o', 'name'])).stdout).toContain('pod/web-1');
  });
});

describe('watch', () => {
  it('streams changes to kubectl get -w as Table rows', async () => {
    const watch = spawnKubectl(writer, ['get', 'configmaps', '-w']);
    try {
      await watch.waitFor('app-config');
      await kubectl(writer, ['create', '-f', manifest('{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"watched"},"data":{"k":"v"}}')]);
      await watch.waitFor(/watched\s+1\s+\d+s/);
    } finally {
      await watch.stop();
    }
  });

  it('resumes a watch from a resourceVersion, sends bookmarks, and answers a compacted one with a 410 ERROR event', async () => {
    const list = JSON.parse((await raw('GET', '/api/v1/namespaces/default/configmaps', { accept: 'application/json' })).body);
    fixture.state.put({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'resumed', namespace: 'default' } });
    const resumed = await raw('GET', `/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=${list.metadata.resourceVersion}&allowWatchBookmarks=true&timeoutSeconds=1`, { accept: 'application/json' });
    const events = resumed.body.trim().split('\n').map((l) => JSON.parse(l));
    expect(events[0]).toEqual(expect.objectContaining({ type: 'ADDED', object: expect.objectContaining({ metadata: expect.objectContaining({ name: 'resumed' }) }) }));
    expect(events.some((e) => e.type === 'BOOKMARK' && e.object.kind === 'ConfigMap')).toBe(true);
    const gone = await raw('GET', '/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=5', { accept: 'application/json' });
    expect(JSON.parse(gone.body.trim())).toEqual({ type: 'ERROR', object: expect.objectContaining({ kind: 'Status', reason: 'Expired', code: 410 }) });
  });
});

describe('watch with selectors', () => {
  it('turns a change that moves an object out of a label selector into DELETED, and into it into ADDED', async () => {
    fixture.state.put({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'moving', namespace: 'default', labels: { tier: 'a' } } });
    const rv = JSON.parse((await raw('GET', '/api/v1/namespaces/default/configmaps', { accept: 'application/json' })).body).metadata.resourceVersion;
    fixture.state.put({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'moving', namespace: 'default', labels: { tier: 'b' } } });
    fixture.state.put({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'moving', namespace: 'default', labels: { tier: 'a' } } });
    const watched = await raw('GET', `/api/v1/namespaces/default/configmaps?watch=1&labelSelector=tier%3Da&resourceVersion=${rv}&timeoutSeconds=1`, { accept: 'application/json' });
    expect(watched.body.trim().split('\n').map((l) => JSON.parse(l).type)).toEqual(['DELETED', 'ADDED']);
  });
});

describe('logs', () => {
  it('follows a pod log with kubectl logs -f, line by line as the container writes', async () => {
    const logs = spawnKubectl(writer, ['logs', '-f', 'web-1']);
    try {
      await logs.waitFor('GET / 200');
      fixture.state.appendLog('default', 'web-1', 'a line written later\n');
      await logs.waitFor('a line written later');
    } finally {
      await logs.stop();
    }
    const tail = await kubectl(writer, ['logs', 'web-1', '--tail=1']);
    expect(tail.stdout).toBe('a line written later\n');
  });

  it('ends a follower when its pod is deleted', async () => {
    fixture.state.put({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'short-lived', namespace: 'default' }, spec: { containers: [{ name: 'c', image: 'busybox' }] } });
    fixture.state.appendLog('default', 'short-lived', 'hello from a pod about to go\n');
    const logs = spawnKubectl(writer, ['logs', '-f', 'short-lived']);
    await logs.waitFor('about to go');
    expect(fixture.state.remove('v1', 'Pod', 'default', 'short-lived')).toEqual(expect.objectContaining({ kind: 'Pod' }));
    expect(await logs.exited).toBe(0);
  });

  it('serves a long log whole, honours --tail, --limit-bytes and --timestamps, and refuses an unknown container', async () => {
    const lines = Array.from({ length: 20_000 }, (_, i) => `line ${i} ${'x'.repeat(100)}`);
    fixture.state.appendLog('default', 'db-0', `${lines.join('\n')}\n`);
    const all = await kubectl(writer, ['logs', 'db-0']);
    expect(all.stdout).toBe(`${lines.join('\n')}\n`);
    expect((await kubectl(writer, ['logs', 'db-0', '--limit-bytes=6'])).stdout).toBe('line 0');
    expect((await kubectl(writer, ['logs', 'db-0', '--tail=1', '--timestamps'])).stdout).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z line 19999 x+\n$/);
    const wrong = await raw('GET', '/api/v1/namespaces/default/pods/db-0/log?container=nope', {});
    expect(JSON.parse(wrong.body)).toEqual(expect.objectContaining({ message: 'container nope is not valid for pod db-0', reason: 'BadRequest', code: 400 }));
  });
});

/** Runs kubectl under a pseudo-terminal, typing `lines` one at a time as the shell prompts. */
const kubectlInTerminal = (env: NodeJS.ProcessEnv, command: string, lines: string[]) => underTerminal(`${KUBECTL} ${command}`, lines, PROMPT, env);

describe.each([
  ['WebSocket (v5.channel.k8s.io)', 'true', 'GET'],
  ['SPDY/3.1', 'false', 'POST'],
])('exec over %s', (_name, websockets, method) => {
  let env: NodeJS.ProcessEnv;
  beforeAll(() => {
    env = { ...writer, KUBECTL_REMOTE_COMMAND_WEBSOCKETS: websockets };
  });

  it('runs a command and returns its output', async () => {
    const out = await kubectl(env, ['exec', 'web-1', '--', 'ls']);
    expect(out).toEqual({ code: 0, stdout: 'etc\nsecret\n', stderr: '' });
    expect(fixture.state.requests.filter((r) => r.path.endsWith('/exec')).at(-1)).toEqual(expect.objectContaining({ method, status: 101 }));
    expect((await kubectl(env, ['exec', 'web-1', '--', 'cat', '/secret'])).stdout).toBe('the-file-secret\n');
    expect((await kubectl(env, ['exec', 'db-0', '--', 'env'])).stdout).toContain('POSTGRES_PASSWORD=pg-Pa55word-1234\n');
  });

  it('passes the exit code through the error channel Status', async () => {
    const out = await kubectl(env, ['exec', 'web-1', '--', 'sh', '-c', 'echo on-stderr-too; exit 3']);
    expect(out.code).toBe(3);
    expect(out.stdout).toBe('on-stderr-too\n');
    expect(out.stderr).toBe('command terminated with exit code 3\n');
    const missing = await kubectl(env, ['exec', 'web-1', '--', 'nope']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('exec: "nope": executable file not found in $PATH');
  });

  it('feeds stdin to the command and ends it when stdin closes', async () => {
    expect((await kubectl(env, ['exec', '-i', 'web-1', '--', 'cat'], 'echoed back\n')).stdout).toBe('echoed back\n');
    const shell = await kubectl(env, ['exec', '-i', 'web-1', '--', 'sh'], 'echo from a script\nexit 4\n');
    expect(shell.code).toBe(4);
    expect(shell.stdout).toBe('from a script\n');
  });

  it('runs an interactive shell on a terminal with kubectl exec -it', async () => {
    const session = await kubectlInTerminal(env, 'exec -it web-1 -- sh', ['echo typed-at-a-tty', 'cat /secret', 'exit 7']);
    expect(session.code).toBe(7);
    expect(session.output).toContain(`${PROMPT}echo typed-at-a-tty\r\ntyped-at-a-tty\r\n${PROMPT}`);
    expect(session.output).toContain('the-file-secret');
  });

  it('attaches to the container with kubectl attach -i', async () => {
    const out = await kubectl(env, ['attach', '-i', 'web-1'], 'echo attached\nexit 2\n');
    expect(out.stdout).toContain('attached\n');
    expect(out.code).toBe(2);
    expect(fixture.state.requests.filter((r) => r.path.endsWith('/attach')).at(-1)).toEqual(expect.objectContaining({ method, status: 101 }));
  });

  it('refuses exec to the read token with a 403', async () => {
    const out = await kubectl({ ...reader, KUBECTL_REMOTE_COMMAND_WEBSOCKETS: websockets }, ['exec', 'web-1', '--', 'ls']);
    expect(out.code).not.toBe(0);
    expect(out.stderr).toContain('pods "web-1" is forbidden: User "system:serviceaccount:twokey:reader" cannot create resource "pods/exec" in API group "" in the namespace "default"');
  });
});

describe('exec over the v4 WebSocket protocol (clients before 1.30)', () => {
  it('negotiates v4.channel.k8s.io and reports the exit status on channel 3', async () => {
    const url = `${fixture.url.replace('https', 'wss')}/api/v1/namespaces/default/pods/web-1/exec?command=sh&command=-c&command=echo%20v4%3B%20exit%205&stdout=true&stderr=true`;
    const ws = new WebSocket(url, ['v4.channel.k8s.io'], { ca: fixture.caPem, headers: { authorization: 'Bearer write-token' } });
    const channels = new Map<number, string>();
    ws.on('message', (data: Buffer) => channels.set(data[0] ?? -1, (channels.get(data[0] ?? -1) ?? '') + data.subarray(1).toString()));
    const code = await new Promise<number>((resolve) => ws.on('close', (c) => resolve(c)));
    expect(ws.protocol).toBe('v4.channel.k8s.io');
    expect(code).toBe(1000);
    expect(channels.get(1)).toBe('v4\n');
    expect(JSON.parse(channels.get(3) ?? '')).toEqual(expect.objectContaining({ status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: '5' }] } }));
  });

  it('refuses an upgrade that offers no protocol it speaks, before switching', async () => {
    const ws = new WebSocket(`${fixture.url.replace('https', 'wss')}/api/v1/namespaces/default/pods/web-1/exec?command=ls&stdout=true`, ['base64.channel.k8s.io'], { ca: fixture.caPem, headers: { authorization: 'Bearer write-token' } });
    const status = await new Promise<number | undefined>((resolve) => ws.on('unexpected-response', (_req, res) => resolve(res.statusCode)));
    expect(status).toBe(400);
  });
});

/** Upgrades a raw TLS connection to SPDY for exec and sends `frames`; resolves when the server closes it. */
function spdyAttack(frames: Buffer[]): Promise<string> {
  return new Promise((resolve) => {
    const url = new URL(fixture.url);
    const socket = tlsConnect({ host: url.hostname, port: Number(url.port), ca: fixture.caPem, servername: 'localhost' }, () => {
      socket.write(`POST /api/v1/namespaces/default/pods/web-1/exec?command=ls&stdout=true HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer write-token\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n\r\n`);
    });
    let got = '';
    socket.on('data', (d: Buffer) => {
      if (!got) for (const f of frames) socket.write(f);
      got += d.toString('latin1');
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(got));
  });
}

describe('SPDY from a hostile client', () => {
  it('closes only the connection that sends unreadable frames (short RST_STREAM, short PING, a bad header block)', async () => {
    const control = (type: number, body: Buffer): Buffer => Buffer.concat([Buffer.from([0x80, 0x03, 0x00, type, 0x00, 0x00, 0x00, body.length]), body]);
    for (const frame of [control(3, Buffer.alloc(0)), control(6, Buffer.from([1])), control(1, Buffer.concat([Buffer.from([0, 0, 0, 1, 0, 0, 0, 0, 0, 0]), Buffer.from('not zlib at all')]))]) {
      const reply = await spdyAttack([frame]);
      expect(reply.startsWith('HTTP/1.1 101 Switching Protocols')).toBe(true);
    }
    expect((await kubectl({ ...writer, KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' }, ['exec', 'web-1', '--', 'echo', 'still serving'])).stdout).toBe('still serving\n');
  });
});

/** Sends a line through a forwarded local port and returns what comes back. */
function throughPort(port: number, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(line));
    let got = '';
    socket.on('data', (d: Buffer) => {
      got += d.toString('utf8');
      if (got.length >= line.length) socket.end();
    });
    socket.on('close', () => resolve(got));
    socket.on('error', reject);
  });
}

describe.each([
  ['a WebSocket tunnel', 'true'],
  ['SPDY/3.1', 'false'],
])('port-forward over %s', (_name, websockets) => {
  it('forwards a local port to a port the pod declares', async () => {
    const forward = spawnKubectl({ ...writer, KUBECTL_PORT_FORWARD_WEBSOCKETS: websockets }, ['port-forward', 'pod/web-1', ':8080']);
    try {
      await forward.waitFor(/Forwarding from 127\.0\.0\.1:\d+ -> 8080/);
      const port = Number(/127\.0\.0\.1:(\d+)/.exec(forward.output())?.[1]);
      expect(await throughPort(port, 'through the tunnel\n')).toBe('through the tunnel\n');
      await forward.waitFor('Handling connection for');
    } finally {
      await forward.stop();
    }
  });
});
