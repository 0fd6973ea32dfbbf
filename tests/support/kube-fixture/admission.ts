import { randomBytes, randomUUID } from 'node:crypto';
import { ensure, field, isObject, metadataOf, objects, setField, text, type Json, type JsonObject } from './json';
import type { ResourceKind } from './kinds';
import type { FieldProblem } from './status';

/** The node every fixture pod runs on, and the addresses it hands out. */
export const NODE_NAME = 'fixture-node';
const HOST_IP = '172.18.0.2';

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const MAX_SUBDOMAIN_CHARS = 253;
const MAX_LABEL_CHARS = 63;
const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;
/** Kinds whose names must be DNS labels (they become DNS names or path segments). */
const LABEL_NAMED = new Set(['namespaces', 'services']);

const SUBDOMAIN_RULE = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_RULE = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

export const timestamp = (ms: number): string => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');

function nameProblems(k: ResourceKind, name: string): FieldProblem[] {
  if (!name) return [{ field: 'metadata.name', type: 'FieldValueRequired', detail: 'name or generateName is required' }];
  const asLabel = LABEL_NAMED.has(k.resource);
  const ok = asLabel ? DNS1123_LABEL.test(name) && name.length <= MAX_LABEL_CHARS : DNS1123_SUBDOMAIN.test(name) && name.length <= MAX_SUBDOMAIN_CHARS;
  return ok ? [] : [{ field: 'metadata.name', type: 'FieldValueInvalid', detail: `${JSON.stringify(name)}: ${asLabel ? LABEL_RULE : SUBDOMAIN_RULE}` }];
}

function containerProblems(containers: Json | undefined, path: string): FieldProblem[] {
  const list = objects(containers);
  if (list.length === 0) return [{ field: path, type: 'FieldValueRequired' }];
  return list.flatMap((c, i) => [
    ...(text(c.name) ? [] : [{ field: `${path}[${i}].name`, type: 'FieldValueRequired' as const }]),
    ...(text(c.image) ? [] : [{ field: `${path}[${i}].image`, type: 'FieldValueRequired' as const }]),
  ]);
}

const keyProblems = (data: JsonObject, path: string): FieldProblem[] =>
  Object.keys(data)
    .filter((key) => !CONFIG_KEY.test(key))
    .map((key) => ({ field: `${path}[${key}]`, type: 'FieldValueInvalid', detail: `${JSON.stringify(key)}: a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')` }));

/** The validation the real registry strategies run (a subset: names, required fields, selectors, keys). */
export function validate(k: ResourceKind, object: JsonObject): FieldProblem[] {
  const problems = nameProblems(k, text(metadataOf(object).name) ?? '');
  const spec = field(object, 'spec');
  switch (k.resource) {
    case 'pods':
      return [...problems, ...containerProblems(spec.containers, 'spec.containers')];
    case 'deployments':
    case 'replicasets': {
      const selector = field(spec, 'selector');
      const labels = field(field(field(spec, 'template'), 'metadata'), 'labels');
      const wanted = Object.entries(field(selector, 'matchLabels'));
      if (!isObject(spec.selector)) problems.push({ field: 'spec.selector', type: 'FieldValueRequired' });
      else if (wanted.length === 0 || wanted.some(([key, v]) => labels[key] !== v)) {
        problems.push({ field: 'spec.template.metadata.labels', type: 'FieldValueInvalid', detail: `${JSON.stringify(labels)}: \`selector\` does not match template \`labels\`` });
      }
      return [...problems, ...containerProblems(field(field(spec, 'template'), 'spec').containers, 'spec.template.spec.containers')];
    }
    case 'secrets':
      return [...problems, ...keyProblems(field(object, 'data'), 'data'), ...keyProblems(field(object, 'stringData'), 'stringData')];
    case 'configmaps':
      return [...problems, ...keyProblems(field(object, 'data'), 'data')];
    case 'services':
      if ((text(spec.type) ?? 'ClusterIP') !== 'ExternalName' && objects(spec.ports).length === 0) problems.push({ field: 'spec.ports', type: 'FieldValueRequired' });
      return problems;
    default:
      return problems;
  }
}

/** Fills `metadata.name` from `generateName` the way the name generator does (5 random characters). */
export function generateName(object: JsonObject): void {
  const metadata = ensure(object, 'metadata');
  const prefix = text(metadata.generateName);
  if (!text(metadata.name) && prefix) metadata.name = prefix + randomBytes(5).toString('hex').replace(/[^a-z0-9]/g, 'x').slice(0, 5);
}

function defaultContainers(spec: JsonObject): void {
  for (const c of objects(spec.containers)) {
    c.imagePullPolicy ??= text(c.image)?.endsWith(':latest') || !text(c.image)?.includes(':') ? 'Always' : 'IfNotPresent';
    c.terminationMessagePath ??= '/dev/termination-log';
    c.terminationMessagePolicy ??= 'File';
    c.resources ??= {};
    for (const p of objects(c.ports)) p.protocol ??= 'TCP';
  }
}

function defaultPodSpec(spec: JsonObject): void {
  defaultContainers(spec);
  spec.restartPolicy ??= 'Always';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.securityContext ??= {};
  spec.schedulerName ??= 'default-scheduler';
}

function podStatus(pod: JsonObject, startedAt: string, ip: string): JsonObject {
  const containers = objects(field(pod, 'spec').containers);
  const condition = (type: string): JsonObject => ({ type, status: 'True', lastProbeTime: null, lastTransitionTime: startedAt });
  return {
    phase: 'Running',
    conditions: ['PodReadyToStartContainers', 'Initialized', 'Ready', 'ContainersReady', 'PodScheduled'].map(condition),
    hostIP: HOST_IP,
    hostIPs: [{ ip: HOST_IP }],
    podIP: ip,
    podIPs: [{ ip }],
    startTime: startedAt,
    qosClass: 'BestEffort',
    containerStatuses: containers.map((c) => ({
      name: c.name ?? '',
      state: { running: { startedAt } },
      lastState: {},
      ready: true,
      restartCount: 0,
      image: c.image ?? '',
      imageID: `${text(c.image) ?? ''}@sha256:${'0'.repeat(64)}`,
      containerID: `containerd://${randomBytes(32).toString('hex')}`,
      started: true,
    })),
  };
}

function deploymentStatus(d: JsonObject, now: string): JsonObject {
  const replicas = Number(field(d, 'spec').replicas ?? 1);
  const condition = (type: string, reason: string, message: string): JsonObject => ({ type, status: 'True', lastUpdateTime: now, lastTransitionTime: now, reason, message });
  return {
    observedGeneration: metadataOf(d).generation ?? 1,
    replicas,
    updatedReplicas: replicas,
    readyReplicas: replicas,
    availableReplicas: replicas,
    conditions: [
      condition('Available', 'MinimumReplicasAvailable', 'Deployment has minimum availability.'),
      condition('Progressing', 'NewReplicaSetAvailable', `ReplicaSet "${text(metadataOf(d).name) ?? ''}" has successfully progressed.`),
    ],
  };
}

const specOf = (o: JsonObject | undefined): string => JSON.stringify(o?.spec ?? null);
const templateOf = (o: JsonObject | undefined): string => JSON.stringify(field(field(o, 'spec'), 'template'));

export interface AdmitContext {
  now: number;
  /** Allocates the next pod or service address. */
  nextAddress(kind: 'pod' | 'service'): string;
}

/**
 * What the server sets on a create or update: identity and timestamps (kept from `existing`),
 * generation, defaults, and the status a healthy controller and kubelet would report at once.
 */
export function admit(k: ResourceKind, object: JsonObject, existing: JsonObject | undefined, ctx: AdmitContext): JsonObject {
  const now = timestamp(ctx.now);
  const metadata = ensure(object, 'metadata');
  const before = existing ? metadataOf(existing) : undefined;
  metadata.uid = before?.uid ?? randomUUID();
  metadata.creationTimestamp = before?.creationTimestamp ?? now;
  if (!k.namespaced) delete metadata.namespace;
  if (metadata.labels === null) delete metadata.labels;
  if (metadata.annotations === null) delete metadata.annotations;
  const tracksGeneration = k.resource === 'deployments' || k.resource === 'replicasets';
  if (tracksGeneration) {
    const generation = Number(before?.generation ?? 0);
    metadata.generation = !existing ? 1 : specOf(existing) === specOf(object) ? generation : generation + 1;
  }
  switch (k.resource) {
    case 'namespaces':
      metadata.labels = { ...field(metadata, 'labels'), 'kubernetes.io/metadata.name': text(metadata.name) ?? '' };
      object.spec = { finalizers: ['kubernetes'] };
      object.status = { phase: 'Active' };
      break;
    case 'pods': {
      const podSpec = ensure(object, 'spec');
      defaultPodSpec(podSpec);
      podSpec.nodeName ??= NODE_NAME;
      podSpec.serviceAccountName ??= 'default';
      const previous = existing ? field(existing, 'status') : undefined;
      object.status = previous && text(previous.podIP) ? previous : podStatus(object, now, ctx.nextAddress('pod'));
      break;
    }
    case 'secrets': {
      object.type ??= 'Opaque';
      const stringData = field(object, 'stringData');
      if (Object.keys(stringData).length) {
        const data = ensure(object, 'data');
        for (const [key, v] of Object.entries(stringData)) setField(data, key, Buffer.from(String(v)).toString('base64'));
      }
      delete object.stringData;
      break;
    }
    case 'services': {
      const svc = ensure(object, 'spec');
      svc.type ??= 'ClusterIP';
      svc.sessionAffinity ??= 'None';
      svc.clusterIP ??= existing ? (field(existing, 'spec').clusterIP ?? ctx.nextAddress('service')) : ctx.nextAddress('service');
      svc.clusterIPs = [svc.clusterIP];
      svc.ipFamilies ??= ['IPv4'];
      svc.ipFamilyPolicy ??= 'SingleStack';
      svc.internalTrafficPolicy ??= 'Cluster';
      for (const p of objects(svc.ports)) {
        p.protocol ??= 'TCP';
        p.targetPort ??= p.port ?? 0;
      }
      object.status = { loadBalancer: {} };
      break;
    }
    case 'deployments': {
      const d = ensure(object, 'spec');
      d.replicas ??= 1;
      d.revisionHistoryLimit ??= 10;
      d.progressDeadlineSeconds ??= 600;
      d.strategy ??= { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } };
      defaultPodSpec(ensure(ensure(d, 'template'), 'spec'));
      const revision = Number(field(before, 'annotations')['deployment.kubernetes.io/revision'] ?? 0);
      const changed = !existing || templateOf(existing) !== templateOf(object);
      metadata.annotations = { ...field(metadata, 'annotations'), 'deployment.kubernetes.io/revision': String(changed ? revision + 1 : revision) };
      object.status = deploymentStatus(object, now);
      break;
    }
    default:
      break;
  }
  return object;
}
