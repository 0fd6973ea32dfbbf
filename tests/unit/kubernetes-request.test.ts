import { classifyRequest, kubernetesAction } from '../../core/kubernetes/classify';
import { MAX_KUBE_PATH_BYTES, MAX_KUBE_QUERY_BYTES, requestInfo, type KubeRequestInfo, type RequestHeaders } from '../../core/kubernetes/request-info';
import { decide } from '../../core/policy/decide';
import { parsePolicy } from '../../core/policy/parse';
import { withDevIssuer } from '../../local/oidc/dev-issuer';
import { identity, TEST_ISSUER } from '../support/identities';

/** Splits `METHOD /path?query` the way the proxy will (the URL as kubectl sent it). */
function info(request: string, headers: RequestHeaders = {}): KubeRequestInfo {
  const result = parse(request, headers);
  if (!result.ok) throw new Error(result.error.message);
  return result.value;
}

function parse(request: string, headers: RequestHeaders = {}): ReturnType<typeof requestInfo> {
  const [method, url] = request.split(' ') as [string, string];
  const q = url.indexOf('?');
  return requestInfo(method, q < 0 ? url : url.slice(0, q), q < 0 ? '' : url.slice(q + 1), headers);
}

/** The attributes as `verb group/version resource/subresource ns=.. name=..`, to compare in one string. */
function attributes(i: KubeRequestInfo): string {
  if (i.kind === 'non-resource') return `${i.verb} ${i.path}`;
  const resource = `${i.group}/${i.version} ${i.resource}${i.subresource ? `/${i.subresource}` : ''}`;
  return [i.verb || '(no verb)', resource, i.namespace !== undefined ? `ns=${i.namespace}` : '', i.name !== undefined ? `name=${i.name}` : ''].filter(Boolean).join(' ');
}

// Requests as kubectl v1.32 sent them (captured with a logging server), and from the API reference.
const KUBECTL_REQUESTS: readonly [string, string, string, string][] = [
  ['kubectl get pods', 'GET /api/v1/namespaces/default/pods?limit=500&timeout=3s', 'list /v1 pods ns=default', 'read'],
  ['kubectl get pods -A', 'GET /api/v1/pods?limit=500&timeout=3s', 'list /v1 pods', 'read'],
  ['kubectl get pod web -w (first the object)', 'GET /api/v1/namespaces/default/pods/web?timeout=1s', 'get /v1 pods ns=default name=web', 'read'],
  ['kubectl get pod web -w', 'GET /api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dweb&resourceVersion=0&timeout=1s&watch=true', 'watch /v1 pods ns=default name=web', 'read'],
  ['kubectl get pods -w', 'GET /api/v1/namespaces/default/pods?resourceVersion=812&watch=true', 'watch /v1 pods ns=default', 'read'],
  ['a list with watch=false', 'GET /api/v1/namespaces/default/pods?watch=false', 'list /v1 pods ns=default', 'read'],
  ['a list with watch=0', 'GET /api/v1/namespaces/default/pods?watch=0', 'list /v1 pods ns=default', 'read'],
  ['the deprecated watch path', 'GET /api/v1/watch/namespaces/default/pods', 'watch /v1 pods ns=default', 'read'],
  ['kubectl get secret db -o yaml', 'GET /api/v1/namespaces/default/secrets/db?timeout=3s', 'get /v1 secrets ns=default name=db', 'read'],
  ['kubectl logs web -f', 'GET /api/v1/namespaces/default/pods/web/log?container=app&follow=true&timeout=3s', 'get /v1 pods/log ns=default name=web', 'read'],
  ['kubectl get ns', 'GET /api/v1/namespaces?limit=500&timeout=3s', 'list /v1 namespaces', 'read'],
  ['kubectl get ns kube-system', 'GET /api/v1/namespaces/kube-system', 'get /v1 namespaces ns=kube-system name=kube-system', 'read'],
  ['kubectl get deploy web', 'GET /apis/apps/v1/namespaces/default/deployments/web?timeout=3s', 'get apps/v1 deployments ns=default name=web', 'read'],
  ['kubectl top pods', 'GET /apis/metrics.k8s.io/v1beta1/namespaces/default/pods', 'list metrics.k8s.io/v1beta1 pods ns=default', 'read'],
  ['HEAD on an object', 'HEAD /api/v1/namespaces/default/pods/web', 'get /v1 pods ns=default name=web', 'read'],
  ['a deployment status read', 'GET /apis/apps/v1/namespaces/default/deployments/web/status', 'get apps/v1 deployments/status ns=default name=web', 'read'],
  ['kubectl auth can-i get pods', 'POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews?timeout=3s', 'create authorization.k8s.io/v1 selfsubjectaccessreviews', 'read'],
  ['kubectl auth whoami', 'POST /apis/authentication.k8s.io/v1/selfsubjectreviews?timeout=3s', 'create authentication.k8s.io/v1 selfsubjectreviews', 'read'],

  ['kubectl delete pod web', 'DELETE /api/v1/namespaces/default/pods/web?timeout=3s', 'delete /v1 pods ns=default name=web', 'write'],
  ['a collection delete', 'DELETE /api/v1/namespaces/default/pods?labelSelector=app%3Dweb', 'deletecollection /v1 pods ns=default', 'write'],
  ['kubectl scale deployment web --replicas=3', 'PATCH /apis/apps/v1/namespaces/default/deployments/web/scale?timeout=3s', 'patch apps/v1 deployments/scale ns=default name=web', 'write'],
  ['kubectl rollout restart deployment web', 'PATCH /apis/apps/v1/namespaces/default/deployments/web?fieldManager=kubectl-rollout&timeout=3s', 'patch apps/v1 deployments ns=default name=web', 'write'],
  ['kubectl create configmap x --dry-run=server', 'POST /api/v1/namespaces/default/configmaps?dryRun=All&fieldManager=kubectl-create&fieldValidation=Strict&timeout=3s', 'create /v1 configmaps ns=default', 'write'],
  ['kubectl apply (client-side, new object)', 'POST /api/v1/namespaces/default/configmaps?fieldManager=kubectl-client-side-apply&fieldValidation=Strict', 'create /v1 configmaps ns=default', 'write'],
  ['kubectl apply --server-side', 'PATCH /api/v1/namespaces/default/configmaps/cm1?fieldManager=kubectl&fieldValidation=Strict&force=false', 'patch /v1 configmaps ns=default name=cm1', 'write'],
  ['kubectl replace', 'PUT /apis/apps/v1/namespaces/default/deployments/web', 'update apps/v1 deployments ns=default name=web', 'write'],
  ['kubectl drain (an eviction)', 'POST /api/v1/namespaces/default/pods/web/eviction', 'create /v1 pods/eviction ns=default name=web', 'write'],
  ['kubectl cordon', 'PATCH /api/v1/nodes/n1', 'patch /v1 nodes name=n1', 'write'],
  ['kubectl delete ns x (finalize)', 'PUT /api/v1/namespaces/x/finalize', 'update /v1 namespaces/finalize ns=x name=x', 'write'],
  ['a secret create', 'POST /api/v1/namespaces/default/secrets', 'create /v1 secrets ns=default', 'write'],
  ['a CSR create (asking only)', 'POST /apis/certificates.k8s.io/v1/certificatesigningrequests', 'create certificates.k8s.io/v1 certificatesigningrequests', 'write'],

  ['kubectl exec over WebSocket', 'GET /api/v1/namespaces/default/pods/web/exec?command=ls&container=app&stderr=true&stdout=true&timeout=3s', 'get /v1 pods/exec ns=default name=web', 'admin'],
  ['kubectl exec over SPDY', 'POST /api/v1/namespaces/default/pods/web/exec?command=ls&container=app&stderr=true&stdout=true&timeout=3s', 'create /v1 pods/exec ns=default name=web', 'admin'],
  ['kubectl attach', 'POST /api/v1/namespaces/default/pods/web/attach?container=app&stdin=true&stdout=true&tty=true', 'create /v1 pods/attach ns=default name=web', 'admin'],
  ['kubectl port-forward over WebSocket', 'GET /api/v1/namespaces/default/pods/web/portforward?timeout=3s', 'get /v1 pods/portforward ns=default name=web', 'admin'],
  ['kubectl port-forward over SPDY', 'POST /api/v1/namespaces/default/pods/web/portforward?timeout=3s', 'create /v1 pods/portforward ns=default name=web', 'admin'],
  ['kubectl debug (ephemeral container)', 'PATCH /api/v1/namespaces/default/pods/web/ephemeralcontainers?timeout=3s', 'patch /v1 pods/ephemeralcontainers ns=default name=web', 'admin'],
  ['kubectl create token sa', 'POST /api/v1/namespaces/default/serviceaccounts/sa/token?timeout=3s', 'create /v1 serviceaccounts/token ns=default name=sa', 'admin'],
  ['kubectl certificate approve', 'PUT /apis/certificates.k8s.io/v1/certificatesigningrequests/c1/approval?timeout=3s', 'update certificates.k8s.io/v1 certificatesigningrequests/approval name=c1', 'admin'],
  ['a CSR signed through its status', 'PUT /apis/certificates.k8s.io/v1/certificatesigningrequests/c1/status', 'update certificates.k8s.io/v1 certificatesigningrequests/status name=c1', 'admin'],
  ['kubectl get --raw of a node\'s kubelet', 'GET /api/v1/nodes/n1/proxy/configz', 'get /v1 nodes/proxy name=n1', 'admin'],
  ['a service proxy', 'GET /api/v1/namespaces/default/services/http:web:80/proxy/admin', 'get /v1 services/proxy ns=default name=http:web:80', 'admin'],
  ['the deprecated proxy path', 'GET /api/v1/proxy/namespaces/default/pods/web/metrics', 'proxy /v1 pods ns=default name=web', 'admin'],
  ['a pod binding', 'POST /api/v1/namespaces/default/pods/web/binding', 'create /v1 pods/binding ns=default name=web', 'admin'],
  ['a core binding', 'POST /api/v1/namespaces/default/bindings', 'create /v1 bindings ns=default', 'admin'],
  ['kubectl create clusterrolebinding', 'POST /apis/rbac.authorization.k8s.io/v1/clusterrolebindings', 'create rbac.authorization.k8s.io/v1 clusterrolebindings', 'admin'],
  ['a role patch', 'PATCH /apis/rbac.authorization.k8s.io/v1/namespaces/default/roles/r', 'patch rbac.authorization.k8s.io/v1 roles ns=default name=r', 'admin'],
  ['a webhook registration', 'POST /apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', 'create admissionregistration.k8s.io/v1 mutatingwebhookconfigurations', 'admin'],
  ['an API service registration', 'POST /apis/apiregistration.k8s.io/v1/apiservices', 'create apiregistration.k8s.io/v1 apiservices', 'admin'],
  ['a token review', 'POST /apis/authentication.k8s.io/v1/tokenreviews', 'create authentication.k8s.io/v1 tokenreviews', 'admin'],
  ['a subject access review about someone else', 'POST /apis/authorization.k8s.io/v1/subjectaccessreviews', 'create authorization.k8s.io/v1 subjectaccessreviews', 'admin'],

  ['kubectl apply -f crd.yaml', 'POST /apis/apiextensions.k8s.io/v1/customresourcedefinitions', 'create apiextensions.k8s.io/v1 customresourcedefinitions', 'ddl'],
  ['reading the RBAC roles', 'GET /apis/rbac.authorization.k8s.io/v1/clusterroles', 'list rbac.authorization.k8s.io/v1 clusterroles', 'read'],

  ['an OPTIONS request', 'OPTIONS /api/v1/namespaces/default/pods', '(no verb) /v1 pods ns=default', 'unknown'],
  ['a subresource the table does not know (KubeVirt console)', 'GET /apis/subresources.kubevirt.io/v1/namespaces/default/virtualmachineinstances/vm/console', 'get subresources.kubevirt.io/v1 virtualmachineinstances/console ns=default name=vm', 'unknown'],
  ['a path past a subresource', 'GET /api/v1/namespaces/default/pods/web/log/extra', 'get /v1 pods/log ns=default name=web', 'unknown'],
];

const NON_RESOURCE_REQUESTS: readonly [string, string, string][] = [
  ['GET /api?timeout=3s', 'get /api', 'read'],
  ['GET /apis?timeout=3s', 'get /apis', 'read'],
  ['GET /api/v1?timeout=3s', 'get /api/v1', 'read'],
  ['GET /apis/apps/v1?timeout=3s', 'get /apis/apps/v1', 'read'],
  ['GET /apis/authorization.k8s.io', 'get /apis/authorization.k8s.io', 'read'],
  ['GET /version?timeout=5s', 'get /version', 'read'],
  ['GET /openapi/v2?timeout=3s', 'get /openapi/v2', 'read'],
  ['GET /openapi/v3?timeout=3s', 'get /openapi/v3', 'read'],
  ['GET /openapi/v3/apis/apps/v1?hash=4A8B', 'get /openapi/v3/apis/apps/v1', 'read'],
  ['GET /healthz', 'get /healthz', 'read'],
  ['GET /readyz/etcd?verbose', 'get /readyz/etcd', 'read'],
  ['GET /livez', 'get /livez', 'read'],
  ['GET /.well-known/openid-configuration', 'get /.well-known/openid-configuration', 'read'],
  ['GET /openid/v1/jwks', 'get /openid/v1/jwks', 'read'],
  ['GET /', 'get /', 'read'],
  ['GET /logs/kube-apiserver.log', 'get /logs/kube-apiserver.log', 'admin'],
  ['PUT /debug/flags/v', 'put /debug/flags/v', 'admin'],
  ['GET /debug/pprof/profile', 'get /debug/pprof/profile', 'admin'],
  ['POST /version', 'post /version', 'unknown'],
  ['POST /apis', 'post /apis', 'unknown'],
  ['GET /something/else', 'get /something/else', 'unknown'],
];

describe('Kubernetes request attributes (the API conventions)', () => {
  it.each(KUBECTL_REQUESTS)('%s: %s', (_what, request, expected, cls) => {
    const i = info(request);
    expect(attributes(i)).toBe(expected);
    expect(classifyRequest(i)).toBe(cls);
  });

  it.each(NON_RESOURCE_REQUESTS)('%s is a non-resource request', (request, expected, cls) => {
    const i = info(request);
    expect(i.kind).toBe('non-resource');
    expect(attributes(i)).toBe(expected);
    expect(classifyRequest(i)).toBe(cls);
  });

  it('keeps a dryRun write a write, and says it is a dry run', () => {
    const i = info('POST /api/v1/namespaces/default/configmaps?dryRun=All');
    expect(classifyRequest(i)).toBe('write');
    expect(i.kind === 'resource' && i.dryRun).toBe(true);
    const other = info('POST /api/v1/namespaces/default/configmaps?dryRun=all');
    expect(other.kind === 'resource' && other.dryRun).toBe(false);
  });

  it('rebuilds the path from the decoded segments (what the agent forwards), keeping a trailing slash', () => {
    const i = info('GET //api/v1/namespaces/de%66ault/pods/web');
    expect(i.path).toBe('/api/v1/namespaces/default/pods/web');
    expect(attributes(i)).toBe('get /v1 pods ns=default name=web');
    expect(info('GET /api/v1/namespaces/default/services/web:80/proxy/').path).toBe('/api/v1/namespaces/default/services/web%3A80/proxy/');
  });

  it('refuses a dryRun the API server would not see (an invalid percent-encoding makes Go drop the pair)', () => {
    const result = parse('POST /api/v1/namespaces/default/configmaps?dryRun=%zz');
    expect(result.ok ? 'accepted' : result.error.code).toBe('malformed');
  });

  it('reads a name from a field selector only when it is the whole selector', () => {
    expect(attributes(info('GET /api/v1/namespaces/default/pods?fieldSelector=metadata.name%3D%3Dweb'))).toBe('list /v1 pods ns=default name=web');
    expect(attributes(info('GET /api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dweb,status.phase%3DRunning'))).toBe('list /v1 pods ns=default');
    expect(attributes(info('GET /api/v1/namespaces/default/pods?fieldSelector=metadata.name%21%3Dweb'))).toBe('list /v1 pods ns=default');
  });

  it('treats any Upgrade outside exec, attach, port-forward and proxy as unknown (a watch over WebSocket would pass unmasked)', () => {
    expect(classifyRequest(info('GET /api/v1/namespaces/default/secrets?watch=true', { Upgrade: 'websocket' }))).toBe('unknown');
    expect(classifyRequest(info('GET /version', { upgrade: 'websocket' }))).toBe('unknown');
    expect(classifyRequest(info('GET /api/v1/namespaces/default/pods/web/exec?command=sh', { upgrade: 'websocket' }))).toBe('admin');
  });
});

describe('Kubernetes requests refused before they are classified', () => {
  it.each([
    ['Impersonate-User', { 'Impersonate-User': 'admin' }],
    ['Impersonate-Group', { 'impersonate-group': ['system:masters'] }],
    ['Impersonate-Uid', { 'IMPERSONATE-UID': '1' }],
    ['Impersonate-Extra-scopes', { 'Impersonate-Extra-Scopes': 'view' }],
  ])('refuses the impersonation header %s', (_name, headers) => {
    const result = parse('GET /api/v1/namespaces/default/pods', headers);
    expect(result.ok ? 'accepted' : result.error.code).toBe('impersonation');
  });

  it('refuses a method override header', () => {
    const result = parse('GET /api/v1/namespaces/default/pods/web', { 'X-HTTP-Method-Override': 'DELETE' });
    expect(result.ok ? 'accepted' : result.error.code).toBe('malformed');
  });

  it.each([
    ['a dot-dot segment', 'GET /api/v1/namespaces/default/pods/../secrets/db'],
    ['an encoded dot-dot segment', 'GET /api/v1/namespaces/default/pods/%2e%2e/secrets/db'],
    ['an encoded slash in a name', 'GET /api/v1/namespaces/default/secrets/a%2Fb'],
    ['an empty segment inside the path', 'GET /api/v1/namespaces//pods'],
    ['a bad percent-encoding', 'GET /api/v1/namespaces/default/pods/%zz'],
    ['a control character', 'GET /api/v1/namespaces/default/pods/a%0Ab'],
    ['a non-ASCII name', 'GET /api/v1/namespaces/default/pods/%C3%A9'],
    ['a double-encoded percent', 'GET /api/v1/namespaces/default/pods/a%2541'],
    ['a backslash', 'GET /api/v1/namespaces/default/pods/a%5Cb'],
    ['a relative path', 'GET api/v1/pods'],
    ['a semicolon in the query', 'GET /api/v1/namespaces/default/pods?watch=false;watch=true'],
    ['a repeated watch parameter', 'GET /api/v1/namespaces/default/pods?watch=false&watch=true'],
    ['a repeated dryRun parameter', 'POST /api/v1/namespaces/default/pods?dryRun=All&dryRun=All'],
    ['a path verb with nothing after it', 'GET /api/v1/watch'],
  ])('refuses %s as malformed', (_what, request) => {
    const result = parse(request);
    expect(result.ok ? 'accepted' : result.error.code).toBe('malformed');
  });

  it('refuses an oversized path and an oversized query, and accepts them at the limit', () => {
    const longName = (bytes: number): string => `/api/v1/namespaces/default/pods/${'a'.repeat(bytes - '/api/v1/namespaces/default/pods/'.length)}`;
    expect(requestInfo('GET', longName(MAX_KUBE_PATH_BYTES), '', {}).ok).toBe(true);
    const tooLong = requestInfo('GET', longName(MAX_KUBE_PATH_BYTES + 1), '', {});
    expect(tooLong.ok ? 'accepted' : tooLong.error.code).toBe('too-large');
    const query = (bytes: number): string => `labelSelector=${'a'.repeat(bytes - 'labelSelector='.length)}`;
    expect(requestInfo('GET', '/api/v1/pods', query(MAX_KUBE_QUERY_BYTES), {}).ok).toBe(true);
    const bigQuery = requestInfo('GET', '/api/v1/pods', query(MAX_KUBE_QUERY_BYTES + 1), {});
    expect(bigQuery.ok ? 'accepted' : bigQuery.error.code).toBe('too-large');
  });

  it('refuses a path with too many segments', () => {
    const result = requestInfo('GET', `/api/v1/namespaces/default/pods/web/proxy/${'a/'.repeat(100)}`, '', {});
    expect(result.ok ? 'accepted' : result.error.code).toBe('too-large');
  });

  it('starts every refusal message with twokey:', () => {
    const result = parse('GET /api/v1/namespaces/default/pods/..');
    expect(result.ok ? '' : result.error.message).toMatch(/^twokey: /);
  });
});

describe('Kubernetes requests against policy blocks', () => {
  const POLICY = `
targets:
  - { name: cluster, protocol: kubernetes, agent: a }
rules:
  - { name: ops, targets: [cluster], subjects: { groups: [ops] }, actions: { read: allow, write: allow, admin: allow } }
blocks:
  - name: no-kube-system-secrets
    targets: [cluster]
    requests: [{ resources: [secrets], namespaces: [kube-system] }]
  - name: no-root-secret
    targets: [cluster]
    requests: [{ resources: [secrets], names: [db-root] }]
  - name: no-node-deletes
    targets: [cluster]
    requests: [{ verbs: [delete, deletecollection], resources: [nodes] }]
`;
  const parsed = parsePolicy(withDevIssuer(POLICY, TEST_ISSUER));
  if (!parsed.ok) throw parsed.error;
  const doc = parsed.value;
  const verdict = (request: string): string => {
    const d = decide(identity('olga', ['ops']), 'cluster', kubernetesAction(info(request)), doc);
    return d.kind === 'deny' ? `deny: ${d.rule}` : d.kind;
  };

  it.each([
    ['GET /api/v1/namespaces/kube-system/secrets/token', 'deny: no-kube-system-secrets'],
    ['GET /api/v1/secrets?limit=500', 'deny: no-kube-system-secrets'],
    ['GET /api/v1/secrets?watch=true', 'deny: no-kube-system-secrets'],
    ['GET /api/v1/namespaces/default/secrets/db-root', 'deny: no-root-secret'],
    ['GET /api/v1/namespaces/default/secrets?limit=500', 'deny: no-root-secret'],
    ['DELETE /api/v1/namespaces/default/secrets', 'deny: no-root-secret'],
    ['POST /api/v1/namespaces/default/secrets', 'deny: no-root-secret'],
    ['GET /api/v1/namespaces/default/secrets?fieldSelector=metadata.name%3Dapp&watch=true', 'allow'],
    ['GET /api/v1/namespaces/default/secrets/app', 'allow'],
    ['DELETE /api/v1/nodes/n1', 'deny: no-node-deletes'],
    ['DELETE /api/v1/nodes', 'deny: no-node-deletes'],
    ['GET /api/v1/nodes', 'allow'],
    ['GET /api/v1/namespaces/kube-system/configmaps', 'allow'],
  ])('%s: %s', (request, expected) => {
    expect(verdict(request)).toBe(expected);
  });

  it('leaves the facet out for non-resource requests (discovery is not a resource a block can name)', () => {
    expect(kubernetesAction(info('GET /apis'))).toEqual({ class: 'read' });
  });
});
