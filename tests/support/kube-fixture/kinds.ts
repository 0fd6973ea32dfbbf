/** One served subresource, as discovery lists it. */
export interface Subresource {
  name: string;
  kind: string;
  group: string;
  version: string;
  verbs: string[];
}

/** One served resource: its place in discovery, OpenAPI and the REST paths. */
export interface ResourceKind {
  group: string;
  version: string;
  resource: string;
  singular: string;
  kind: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  subresources: Subresource[];
  /** What discovery lists and the server serves. */
  verbs: string[];
}

const STORED_VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];
const STATUS_VERBS = ['get', 'patch', 'update'];

const sub = (name: string, kind: string, verbs: string[], group = '', version = 'v1'): Subresource => ({ name, kind, group, version, verbs });

function kind(group: string, resource: string, singular: string, k: string, namespaced: boolean, shortNames: string[], categories: string[], subresources: Subresource[] = [], verbs = STORED_VERBS): ResourceKind {
  return { group, version: 'v1', resource, singular, kind: k, namespaced, shortNames, categories, subresources, verbs };
}

/** A review that is answered, never stored (authorization.k8s.io): `kubectl auth can-i`. */
export const ACCESS_REVIEW = 'selfsubjectaccessreviews';

/** Everything the fixture serves; kinds a real cluster has but this list lacks answer 404 like an absent CRD. */
export const KINDS: readonly ResourceKind[] = [
  kind('', 'namespaces', 'namespace', 'Namespace', false, ['ns'], [], [sub('status', 'Namespace', STATUS_VERBS), sub('finalize', 'Namespace', ['update'])], STORED_VERBS.filter((v) => v !== 'deletecollection')),
  kind('', 'pods', 'pod', 'Pod', true, ['po'], ['all'], [
    sub('attach', 'PodAttachOptions', ['create', 'get']),
    sub('exec', 'PodExecOptions', ['create', 'get']),
    sub('log', 'Pod', ['get']),
    sub('portforward', 'PodPortForwardOptions', ['create', 'get']),
    sub('status', 'Pod', STATUS_VERBS),
  ]),
  kind('', 'secrets', 'secret', 'Secret', true, [], []),
  kind('', 'configmaps', 'configmap', 'ConfigMap', true, ['cm'], []),
  kind('', 'services', 'service', 'Service', true, ['svc'], ['all'], [sub('status', 'Service', STATUS_VERBS)]),
  kind('', 'events', 'event', 'Event', true, ['ev'], []),
  kind('apps', 'deployments', 'deployment', 'Deployment', true, ['deploy'], ['all'], [
    sub('scale', 'Scale', STATUS_VERBS, 'autoscaling'),
    sub('status', 'Deployment', STATUS_VERBS, 'apps'),
  ]),
  kind('apps', 'replicasets', 'replicaset', 'ReplicaSet', true, ['rs'], ['all'], [
    sub('scale', 'Scale', STATUS_VERBS, 'autoscaling'),
    sub('status', 'ReplicaSet', STATUS_VERBS, 'apps'),
  ]),
  kind('authorization.k8s.io', ACCESS_REVIEW, 'selfsubjectaccessreview', 'SelfSubjectAccessReview', false, [], [], [], ['create']),
];

export const GROUPS = ['apps', 'authorization.k8s.io'] as const;

/** Whether objects of the kind are kept (a review is only answered). */
export const isStored = (k: ResourceKind): boolean => k.verbs.includes('get');

export const apiVersionOf = (k: { group: string; version: string }): string => (k.group ? `${k.group}/${k.version}` : k.version);

export function findKind(group: string, version: string, resource: string): ResourceKind | undefined {
  return KINDS.find((k) => k.group === group && k.version === version && k.resource === resource);
}

export function kindByName(apiVersion: string, kindName: string): ResourceKind | undefined {
  return KINDS.find((k) => apiVersionOf(k) === apiVersion && k.kind === kindName);
}
