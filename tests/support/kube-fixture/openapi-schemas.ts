/**
 * The schemas of the served kinds, reduced to the fields tests and `kubectl explain` touch, in one
 * neutral form rendered as OpenAPI v2 (`#/definitions`) and v3 (`#/components/schemas`). Names,
 * descriptions and patch extensions follow k8s.io/api.
 */
export type Prop =
  | { type: 'string' | 'integer' | 'boolean'; description: string; format?: string }
  | { type: 'map'; description: string }
  | { type: 'int-or-string'; description: string }
  | { type: 'ref'; ref: string; description: string }
  | { type: 'array'; items: Prop; description: string; mergeKey?: string; listMapKeys?: string[] };

export interface Definition {
  description: string;
  properties: Record<string, Prop>;
  required?: string[];
  gvk?: { group: string; version: string; kind: string };
}

const str = (description: string): Prop => ({ type: 'string', description });
const int = (description: string): Prop => ({ type: 'integer', description, format: 'int32' });
const bool = (description: string): Prop => ({ type: 'boolean', description });
const map = (description: string): Prop => ({ type: 'map', description });
const ref = (name: string, description: string): Prop => ({ type: 'ref', ref: name, description });
const arr = (items: Prop, description: string, mergeKey?: string, listMapKeys?: string[]): Prop => ({ type: 'array', items, description, ...(mergeKey ? { mergeKey } : {}), ...(listMapKeys ? { listMapKeys } : {}) });

export const META = 'io.k8s.apimachinery.pkg.apis.meta.v1';
const CORE = 'io.k8s.api.core.v1';
const APPS = 'io.k8s.api.apps.v1';

const API_VERSION = str('APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources');
const KIND = str('Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds');
const OBJECT_META = ref(`${META}.ObjectMeta`, "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata");
const LIST_META = ref(`${META}.ListMeta`, "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds");

function topLevel(group: string, kind: string, description: string, properties: Record<string, Prop>): Definition {
  return { description, properties: { apiVersion: API_VERSION, kind: KIND, metadata: OBJECT_META, ...properties }, gvk: { group, version: 'v1', kind } };
}

function listOf(prefix: string, group: string, kind: string, description: string): [string, Definition] {
  return [`${prefix}.${kind}List`, { description, required: ['items'], properties: { apiVersion: API_VERSION, items: arr(ref(`${prefix}.${kind}`, ''), `List of ${kind.toLowerCase()}s.`), kind: KIND, metadata: LIST_META }, gvk: { group, version: 'v1', kind: `${kind}List` } }];
}

const CONTAINERS_DOC = 'List of containers belonging to the pod. Containers cannot currently be added or removed. There must be at least one container in a Pod. Cannot be updated.';

export const DEFINITIONS: Record<string, Definition> = {
  [`${META}.ObjectMeta`]: {
    description: 'ObjectMeta is metadata that all persisted resources must have, which includes all objects users must create.',
    properties: {
      annotations: map('Annotations is an unstructured key value map stored with a resource that may be set by external tools to store and retrieve arbitrary metadata.'),
      creationTimestamp: str('CreationTimestamp is a timestamp representing the server time when this object was created.'),
      generateName: str('GenerateName is an optional prefix, used by the server, to generate a unique name ONLY IF the Name field has not been provided.'),
      generation: { type: 'integer', format: 'int64', description: 'A sequence number representing a specific generation of the desired state. Populated by the system. Read-only.' },
      labels: map('Map of string keys and values that can be used to organize and categorize (scope and select) objects.'),
      managedFields: arr(ref(`${META}.ManagedFieldsEntry`, ''), 'ManagedFields maps workflow-id and version to the set of fields that are managed by that workflow.'),
      name: str('Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically.'),
      namespace: str('Namespace defines the space within which each name must be unique. An empty namespace is equivalent to the "default" namespace.'),
      resourceVersion: str('An opaque value that represents the internal version of this object that can be used by clients to determine when objects have changed.'),
      uid: str('UID is the unique in time and space value for this object.'),
    },
  },
  [`${META}.ManagedFieldsEntry`]: {
    description: 'ManagedFieldsEntry is a workflow-id, a FieldSet and the group version of the resource that the fieldset applies to.',
    properties: { apiVersion: str('APIVersion defines the version of this resource that this field set applies to.'), fieldsType: str('FieldsType is the discriminator for the different fields format and version.'), fieldsV1: map('FieldsV1 holds the first JSON version format as described in the "FieldsV1" type.'), manager: str('Manager is an identifier of the workflow managing these fields.'), operation: str('Operation is the type of operation which lead to this ManagedFieldsEntry being created.'), subresource: str('Subresource is the name of the subresource used to update that object.'), time: str('Time is the timestamp of when the ManagedFields entry was added.') },
  },
  [`${META}.ListMeta`]: {
    description: 'ListMeta describes metadata that synthetic resources must have, including lists and various status objects.',
    properties: { continue: str('continue may be set if the user set a limit on the number of items returned.'), remainingItemCount: { type: 'integer', format: 'int64', description: 'remainingItemCount is the number of subsequent items in the list which are not included in this list response.' }, resourceVersion: str("String that identifies the server's internal version of this object.") },
  },
  [`${META}.LabelSelector`]: {
    description: 'A label selector is a label query over a set of resources.',
    properties: { matchLabels: map('matchLabels is a map of {key,value} pairs.') },
  },
  [`${CORE}.Pod`]: topLevel('', 'Pod', 'Pod is a collection of containers that can run on a host. This resource is created by clients and scheduled onto hosts.', {
    spec: ref(`${CORE}.PodSpec`, 'Specification of the desired behavior of the pod.'),
    status: ref(`${CORE}.PodStatus`, 'Most recently observed status of the pod. This data may not be up to date.'),
  }),
  [`${CORE}.PodSpec`]: {
    description: 'PodSpec is a description of a pod.',
    required: ['containers'],
    properties: {
      containers: arr(ref(`${CORE}.Container`, ''), CONTAINERS_DOC, 'name', ['name']),
      nodeName: str('NodeName indicates in which node this pod is scheduled.'),
      restartPolicy: str('Restart policy for all containers within the pod. One of Always, OnFailure, Never.'),
      serviceAccountName: str('ServiceAccountName is the name of the ServiceAccount to use to run this pod.'),
      terminationGracePeriodSeconds: { type: 'integer', format: 'int64', description: 'Optional duration in seconds the pod needs to terminate gracefully.' },
    },
  },
  [`${CORE}.Container`]: {
    description: 'A single application container that you want to run within a pod.',
    required: ['name'],
    properties: {
      args: arr(str(''), 'Arguments to the entrypoint.'),
      command: arr(str(''), 'Entrypoint array. Not executed within a shell.'),
      env: arr(ref(`${CORE}.EnvVar`, ''), 'List of environment variables to set in the container. Cannot be updated.', 'name', ['name']),
      image: str('Container image name.'),
      imagePullPolicy: str('Image pull policy. One of Always, Never, IfNotPresent.'),
      name: str('Name of the container specified as a DNS_LABEL. Each container in a pod must have a unique name (DNS_LABEL). Cannot be updated.'),
      ports: arr(ref(`${CORE}.ContainerPort`, ''), 'List of ports to expose from the container.', 'containerPort', ['containerPort', 'protocol']),
    },
  },
  [`${CORE}.ContainerPort`]: {
    description: 'ContainerPort represents a network port in a single container.',
    required: ['containerPort'],
    properties: { containerPort: int('Number of port to expose on the pod\'s IP address.'), name: str('If specified, this must be an IANA_SVC_NAME and unique within the pod.'), protocol: str('Protocol for port. Must be UDP, TCP, or SCTP. Defaults to "TCP".') },
  },
  [`${CORE}.EnvVar`]: {
    description: 'EnvVar represents an environment variable present in a Container.',
    required: ['name'],
    properties: { name: str('Name of the environment variable. Must be a C_IDENTIFIER.'), value: str('Variable references $(VAR_NAME) are expanded using the previously defined environment variables in the container.') },
  },
  [`${CORE}.PodStatus`]: {
    description: 'PodStatus represents information about the status of a pod.',
    properties: { phase: str('The phase of a Pod is a simple, high-level summary of where the Pod is in its lifecycle.'), podIP: str('podIP address allocated to the pod.'), hostIP: str('hostIP holds the IP address of the host to which the pod is assigned.'), startTime: str('RFC 3339 date and time at which the object was acknowledged by the Kubelet.') },
  },
  [`${CORE}.PodTemplateSpec`]: {
    description: 'PodTemplateSpec describes the data a pod should have when created from a template',
    properties: { metadata: OBJECT_META, spec: ref(`${CORE}.PodSpec`, 'Specification of the desired behavior of the pod.') },
  },
  [`${CORE}.Secret`]: topLevel('', 'Secret', 'Secret holds secret data of a certain type. The total bytes of the values in the Data field must be less than MaxSecretSize bytes.', {
    data: { type: 'map', description: "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string." },
    immutable: bool('Immutable, if set to true, ensures that data stored in the Secret cannot be updated (only object metadata can be modified).'),
    stringData: map('stringData allows specifying non-binary secret data in string form. It is provided as a write-only input field for convenience.'),
    type: str('Used to facilitate programmatic handling of secret data.'),
  }),
  [`${CORE}.ConfigMap`]: topLevel('', 'ConfigMap', 'ConfigMap holds configuration data for pods to consume.', {
    binaryData: map('BinaryData contains the binary data.'),
    data: map('Data contains the configuration data.'),
    immutable: bool('Immutable, if set to true, ensures that data stored in the ConfigMap cannot be updated (only object metadata can be modified).'),
  }),
  [`${CORE}.Namespace`]: topLevel('', 'Namespace', 'Namespace provides a scope for Names. Use of multiple namespaces is optional.', {
    spec: ref(`${CORE}.NamespaceSpec`, 'Spec defines the behavior of the Namespace.'),
    status: ref(`${CORE}.NamespaceStatus`, 'Status describes the current status of a Namespace.'),
  }),
  [`${CORE}.NamespaceSpec`]: { description: 'NamespaceSpec describes the attributes on a Namespace.', properties: { finalizers: arr(str(''), 'Finalizers is an opaque list of values that must be empty to permanently remove object from storage.') } },
  [`${CORE}.NamespaceStatus`]: { description: 'NamespaceStatus is information about the current status of a Namespace.', properties: { phase: str('Phase is the current lifecycle phase of the namespace.') } },
  [`${CORE}.Service`]: topLevel('', 'Service', 'Service is a named abstraction of software service (for example, mysql) consisting of local port (for example 3306) that the proxy listens on, and the selector that determines which pods will answer requests sent through the proxy.', {
    spec: ref(`${CORE}.ServiceSpec`, 'Spec defines the behavior of a service.'),
  }),
  [`${CORE}.ServiceSpec`]: {
    description: 'ServiceSpec describes the attributes that a user creates on a service.',
    properties: {
      clusterIP: str('clusterIP is the IP address of the service and is usually assigned randomly.'),
      ports: arr(ref(`${CORE}.ServicePort`, ''), 'The list of ports that are exposed by this service.', 'port', ['port', 'protocol']),
      selector: map('Route service traffic to pods with label keys and values matching this selector.'),
      type: str('type determines how the Service is exposed. Defaults to ClusterIP.'),
    },
  },
  [`${CORE}.ServicePort`]: {
    description: "ServicePort contains information on service's port.",
    required: ['port'],
    properties: { name: str('The name of this port within the service.'), port: int('The port that will be exposed by this service.'), protocol: str('The IP protocol for this port. Supports "TCP", "UDP", and "SCTP". Default is TCP.'), targetPort: { type: 'int-or-string', description: 'Number or name of the port to access on the pods targeted by the service.' } },
  },
  [`${CORE}.Event`]: topLevel('', 'Event', 'Event is a report of an event somewhere in the cluster.', {
    involvedObject: ref(`${CORE}.ObjectReference`, 'The object that this event is about.'),
    message: str('A human-readable description of the status of this operation.'),
    reason: str('This should be a short, machine understandable string that gives the reason for the transition into the object\'s current status.'),
    type: str('Type of this event (Normal, Warning), new types could be added in the future'),
  }),
  [`${CORE}.ObjectReference`]: { description: 'ObjectReference contains enough information to let you inspect or modify the referred object.', properties: { kind: str('Kind of the referent.'), name: str('Name of the referent.'), namespace: str('Namespace of the referent.'), uid: str('UID of the referent.') } },
  [`${APPS}.Deployment`]: topLevel('apps', 'Deployment', 'Deployment enables declarative updates for Pods and ReplicaSets.', {
    spec: ref(`${APPS}.DeploymentSpec`, 'Specification of the desired behavior of the Deployment.'),
    status: ref(`${APPS}.DeploymentStatus`, 'Most recently observed status of the Deployment.'),
  }),
  [`${APPS}.DeploymentSpec`]: {
    description: 'DeploymentSpec is the specification of the desired behavior of the Deployment.',
    required: ['selector', 'template'],
    properties: {
      replicas: int('Number of desired pods. This is a pointer to distinguish between explicit zero and not specified. Defaults to 1.'),
      selector: ref(`${META}.LabelSelector`, 'Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment. It must match the pod template\'s labels.'),
      template: ref(`${CORE}.PodTemplateSpec`, 'Template describes the pods that will be created. The only allowed template.spec.restartPolicy value is "Always".'),
    },
  },
  [`${APPS}.DeploymentStatus`]: {
    description: 'DeploymentStatus is the most recently observed status of the Deployment.',
    properties: { availableReplicas: int('Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.'), observedGeneration: { type: 'integer', format: 'int64', description: 'The generation observed by the deployment controller.' }, readyReplicas: int('readyReplicas is the number of pods targeted by this Deployment with a Ready Condition.'), replicas: int('Total number of non-terminated pods targeted by this deployment (their labels match the selector).'), updatedReplicas: int('Total number of non-terminated pods targeted by this deployment that have the desired template spec.') },
  },
  [`${APPS}.ReplicaSet`]: topLevel('apps', 'ReplicaSet', 'ReplicaSet ensures that a specified number of pod replicas are running at any given time.', {
    spec: ref(`${APPS}.DeploymentSpec`, 'Spec defines the specification of the desired behavior of the ReplicaSet.'),
  }),
  'io.k8s.api.autoscaling.v1.Scale': {
    description: 'Scale represents a scaling request for a resource.',
    properties: { apiVersion: API_VERSION, kind: KIND, metadata: OBJECT_META, spec: ref('io.k8s.api.autoscaling.v1.ScaleSpec', 'spec defines the behavior of the scale.'), status: ref('io.k8s.api.autoscaling.v1.ScaleStatus', 'status is the current status of the scale.') },
    gvk: { group: 'autoscaling', version: 'v1', kind: 'Scale' },
  },
  'io.k8s.api.autoscaling.v1.ScaleSpec': { description: 'ScaleSpec describes the attributes of a scale subresource.', properties: { replicas: int('replicas is the desired number of instances for the scaled object.') } },
  'io.k8s.api.autoscaling.v1.ScaleStatus': { description: 'ScaleStatus represents the current status of a scale subresource.', required: ['replicas'], properties: { replicas: int('replicas is the actual number of observed instances of the scaled object.'), selector: str('selector is the label query over pods that should match the replicas count.') } },
  [`${META}.Status`]: {
    description: 'Status is a return value for calls that don\'t return other objects.',
    properties: { apiVersion: API_VERSION, code: int('Suggested HTTP return code for this status, 0 if not set.'), kind: KIND, message: str('A human-readable description of the status of this operation.'), metadata: LIST_META, reason: str('A machine-readable description of why this operation is in the "Failure" status.'), status: str('Status of the operation. One of: "Success" or "Failure".') },
    gvk: { group: '', version: 'v1', kind: 'Status' },
  },
  ...Object.fromEntries([
    listOf(CORE, '', 'Pod', 'PodList is a list of Pods.'),
    listOf(CORE, '', 'Secret', 'SecretList is a list of Secret.'),
    listOf(CORE, '', 'ConfigMap', 'ConfigMapList is a resource containing a list of ConfigMap objects.'),
    listOf(CORE, '', 'Namespace', 'NamespaceList is a list of Namespaces.'),
    listOf(CORE, '', 'Service', 'ServiceList holds a list of services.'),
    listOf(CORE, '', 'Event', 'EventList is a list of events.'),
    listOf(APPS, 'apps', 'Deployment', 'DeploymentList is a list of Deployments.'),
    listOf(APPS, 'apps', 'ReplicaSet', 'ReplicaSetList is a collection of ReplicaSets.'),
  ]),
};

const AUTHZ = 'io.k8s.api.authorization.v1';
DEFINITIONS[`${AUTHZ}.SelfSubjectAccessReview`] = topLevel('authorization.k8s.io', 'SelfSubjectAccessReview', 'SelfSubjectAccessReview checks whether or the current user can perform an action.', {
  spec: ref(`${AUTHZ}.SelfSubjectAccessReviewSpec`, 'Spec holds information about the request being evaluated.  user and groups must be empty'),
  status: ref(`${AUTHZ}.SubjectAccessReviewStatus`, 'Status is filled in by the server and indicates whether the request is allowed or not'),
});
DEFINITIONS[`${AUTHZ}.SelfSubjectAccessReviewSpec`] = {
  description: 'SelfSubjectAccessReviewSpec is a description of the access request.  Exactly one of ResourceAuthorizationAttributes and NonResourceAuthorizationAttributes must be set',
  properties: { resourceAttributes: ref(`${AUTHZ}.ResourceAttributes`, 'ResourceAuthorizationAttributes describes information for a resource access request') },
};
DEFINITIONS[`${AUTHZ}.ResourceAttributes`] = {
  description: 'ResourceAttributes includes the authorization attributes available for resource requests to the Authorizer interface',
  properties: Object.fromEntries(['group', 'name', 'namespace', 'resource', 'subresource', 'verb', 'version'].map((f) => [f, str(`${f.charAt(0).toUpperCase()}${f.slice(1)} of the action being requested.`)])),
};
DEFINITIONS[`${AUTHZ}.SubjectAccessReviewStatus`] = {
  description: 'SubjectAccessReviewStatus',
  required: ['allowed'],
  properties: { allowed: bool('Allowed is required. True if the action would be allowed, false otherwise.'), denied: bool('Denied is optional. True if the action would be denied, otherwise false.'), reason: str('Reason is optional.  It indicates why a request was allowed or denied.') },
};

DEFINITIONS[`${META}.Patch`] = { description: 'Patch is provided to give a concrete name and type to the Kubernetes PATCH request body.', properties: {} };
DEFINITIONS[`${META}.DeleteOptions`] = {
  description: 'DeleteOptions may be provided when deleting an API object.',
  properties: { apiVersion: API_VERSION, dryRun: arr(str(''), 'When present, indicates that modifications should not be persisted.'), gracePeriodSeconds: { type: 'integer', format: 'int64', description: 'The duration in seconds before the object should be deleted.' }, kind: KIND, propagationPolicy: str('Whether and how garbage collection will be performed.') },
};
