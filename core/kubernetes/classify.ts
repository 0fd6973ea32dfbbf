import type { Action } from '../policy/decide';
import type { ActionClass } from '../policy/schema';
import type { KubeRequestInfo, NonResourceRequestInfo, ResourceRequestInfo } from './request-info';

/**
 * The policy's action class for a Kubernetes request. Reads are get/list/watch, discovery, OpenAPI
 * and logs; writes the verbs that change objects (a `dryRun` write too: it runs admission with the
 * write credential); `admin` whatever reaches into workloads or nodes, or grants credentials or
 * privileges; `ddl` a change to the API itself (a CustomResourceDefinition); `unknown` any path or
 * subresource this table does not know (the policy's strictest handling, never a read by default).
 */

const READ_VERBS = new Set(['get', 'list', 'watch']);

/** Subresources that run code in, or open a channel to, a workload or node, or mint a credential: admin whatever the method. */
const ADMIN_SUBRESOURCES = new Set([
  'exec',
  'attach',
  'portforward',
  'proxy',
  'ephemeralcontainers',
  // serviceaccounts/token mints a token for the service account
  'token',
  // pods/binding places a pod on a node: the scheduler's privilege
  'binding',
]);

/** Subresources whose reads and writes are the object's own (status, scale, a pod's log, an eviction, ...). */
const PLAIN_SUBRESOURCES = new Set(['status', 'scale', 'log', 'eviction', 'resize', 'finalize', 'approval']);

/** Changing these grants privileges or credentials, or intercepts other requests (webhooks, API services). Keys are `group/resource`. */
const ADMIN_WHEN_CHANGED = new Set([
  'rbac.authorization.k8s.io/roles',
  'rbac.authorization.k8s.io/rolebindings',
  'rbac.authorization.k8s.io/clusterroles',
  'rbac.authorization.k8s.io/clusterrolebindings',
  'admissionregistration.k8s.io/mutatingwebhookconfigurations',
  'admissionregistration.k8s.io/validatingwebhookconfigurations',
  'admissionregistration.k8s.io/validatingadmissionpolicies',
  'admissionregistration.k8s.io/validatingadmissionpolicybindings',
  'admissionregistration.k8s.io/mutatingadmissionpolicies',
  'admissionregistration.k8s.io/mutatingadmissionpolicybindings',
  'apiregistration.k8s.io/apiservices',
  // the core group's bindings resource: the same as pods/binding
  '/bindings',
  // approving or signing a request issues a client certificate (creating one only asks)
  'certificates.k8s.io/certificatesigningrequests/approval',
  'certificates.k8s.io/certificatesigningrequests/status',
]);

/** Changing these changes the API itself. */
const DDL_WHEN_CHANGED = new Set(['apiextensions.k8s.io/customresourcedefinitions']);

/**
 * Reviews are POSTs that persist nothing. Asking about oneself (`kubectl auth can-i`, `auth whoami`)
 * is a read; asking about other tokens or subjects probes credentials with the agent's identity: admin.
 */
const REVIEWS: Readonly<Record<string, ActionClass>> = {
  'authorization.k8s.io/selfsubjectaccessreviews': 'read',
  'authorization.k8s.io/selfsubjectrulesreviews': 'read',
  'authentication.k8s.io/selfsubjectreviews': 'read',
  'authorization.k8s.io/subjectaccessreviews': 'admin',
  'authorization.k8s.io/localsubjectaccessreviews': 'admin',
  'authentication.k8s.io/tokenreviews': 'admin',
};

export function classifyRequest(info: KubeRequestInfo): ActionClass {
  return info.kind === 'resource' ? classifyResource(info) : classifyNonResource(info);
}

function classifyResource(info: ResourceRequestInfo): ActionClass {
  if (info.verb === '') return 'unknown';
  if (info.verb === 'proxy') return 'admin';
  const sub = info.subresource;
  if (sub !== undefined && ADMIN_SUBRESOURCES.has(sub)) return 'admin';
  if (sub !== undefined && !PLAIN_SUBRESOURCES.has(sub)) return 'unknown';
  // Only a proxy carries a path past its subresource.
  if (info.rest.length > 0) return 'unknown';
  // Everything else that asks to switch protocols (a watch over WebSocket) would bypass response masking.
  if (info.upgrade) return 'unknown';
  const key = `${info.group}/${info.resource}`;
  const review = sub === undefined && info.verb === 'create' ? REVIEWS[key] : undefined;
  if (review) return review;
  if (READ_VERBS.has(info.verb)) return 'read';
  if (ADMIN_WHEN_CHANGED.has(key) || (sub !== undefined && ADMIN_WHEN_CHANGED.has(`${key}/${sub}`))) return 'admin';
  if (DDL_WHEN_CHANGED.has(key)) return 'ddl';
  return 'write';
}

/** Non-resource paths that are reads for GET and HEAD: discovery, version, OpenAPI, health, the service-account issuer's keys. */
function isNonResourceRead(segments: readonly string[]): boolean {
  const [first, second] = segments;
  switch (first) {
    case undefined:
      return true; // `/` lists the paths the server serves
    case 'api':
      return segments.length <= 2;
    case 'apis':
      return segments.length <= 3;
    case 'version':
    case 'metrics':
      return segments.length === 1;
    case 'openapi':
      return second === 'v2' ? segments.length === 2 : second === 'v3';
    case 'healthz':
    case 'livez':
    case 'readyz':
      return true;
    case '.well-known':
      return segments.length === 2 && second === 'openid-configuration';
    case 'openid':
      return segments.join('/') === 'openid/v1/jwks';
    default:
      return false;
  }
}

/** `/logs` serves the control plane host's log files, `/debug` profiling and `PUT /debug/flags/v`. */
const ADMIN_NON_RESOURCE_ROOTS = new Set(['logs', 'debug']);

function classifyNonResource(info: NonResourceRequestInfo): ActionClass {
  if (ADMIN_NON_RESOURCE_ROOTS.has(info.segments[0] as string)) return 'admin';
  if ((info.method === 'GET' || info.method === 'HEAD') && !info.upgrade && isNonResourceRead(info.segments)) return 'read';
  return 'unknown';
}

/**
 * Built-in resources that have no namespace. A collection request without a namespace on any other
 * resource spans every namespace (`kubectl get secrets -A`), so a block naming namespaces applies to it.
 * A custom resource missing here is taken as namespaced: a namespace block then applies, which errs
 * on the side of blocking. Namespaces themselves are not here: a collection of them spans every one.
 */
const CLUSTER_SCOPED = new Set([
  '/nodes',
  '/persistentvolumes',
  '/componentstatuses',
  'rbac.authorization.k8s.io/clusterroles',
  'rbac.authorization.k8s.io/clusterrolebindings',
  'storage.k8s.io/storageclasses',
  'storage.k8s.io/csidrivers',
  'storage.k8s.io/csinodes',
  'storage.k8s.io/volumeattachments',
  'apiextensions.k8s.io/customresourcedefinitions',
  'apiregistration.k8s.io/apiservices',
  'admissionregistration.k8s.io/mutatingwebhookconfigurations',
  'admissionregistration.k8s.io/validatingwebhookconfigurations',
  'admissionregistration.k8s.io/validatingadmissionpolicies',
  'admissionregistration.k8s.io/validatingadmissionpolicybindings',
  'certificates.k8s.io/certificatesigningrequests',
  'scheduling.k8s.io/priorityclasses',
  'node.k8s.io/runtimeclasses',
  'networking.k8s.io/ingressclasses',
  'networking.k8s.io/ipaddresses',
  'networking.k8s.io/servicecidrs',
  'flowcontrol.apiserver.k8s.io/flowschemas',
  'flowcontrol.apiserver.k8s.io/prioritylevelconfigurations',
]);

const COLLECTION_VERBS = new Set(['list', 'watch', 'deletecollection', 'create']);

/**
 * The policy action for a request: its class and, for resource requests, the `kubernetes` facet that
 * block rules match. A collection request (list, watch, deletecollection, and a create, whose name is
 * in its body) touches every name, and without a namespace every namespace: blocks naming names or
 * namespaces apply to it.
 */
export function kubernetesAction(info: KubeRequestInfo): Action {
  const cls = classifyRequest(info);
  if (info.kind === 'non-resource') return { class: cls };
  const everyName = info.name === undefined && COLLECTION_VERBS.has(info.verb);
  const everyNamespace = everyName && info.namespace === undefined && !CLUSTER_SCOPED.has(`${info.group}/${info.resource}`);
  return {
    class: cls,
    kubernetes: {
      verb: info.verb,
      group: info.group,
      resource: info.resource,
      ...(info.namespace !== undefined && { namespace: info.namespace }),
      ...(info.name !== undefined && { name: info.name }),
      ...(info.subresource !== undefined && { subresource: info.subresource }),
      ...(everyName && { everyName }),
      ...(everyNamespace && { everyNamespace }),
    },
  };
}
