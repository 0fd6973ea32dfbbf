import { setField, type Json, type JsonObject } from './json';
import { badRequest, unsupportedMediaType } from './status';

/**
 * Request bodies in Kubernetes' protobuf encoding (typed clients, e.g. `kubectl create configmap`,
 * send them): the `k8s\0` magic, a runtime.Unknown envelope naming apiVersion and kind, and the
 * object in k8s.io/api's generated.proto field numbers. Decoded to the JSON the same object has,
 * for the kinds the fixture serves; the fixture never writes protobuf.
 */
export const PROTOBUF_MAGIC = Buffer.from('k8s\u0000', 'latin1');
const MAX_NESTING = 32;

type Scalar = 'string' | 'bytes' | 'int32' | 'int64' | 'bool' | 'time' | 'intOrString' | 'quantity';
type FieldType = Scalar | { message: string } | { map: Scalar | { message: string } };
interface Field {
  name: string;
  type: FieldType;
  repeated?: boolean;
  /** A pointer field: zero is a value, not absence (e.g. `replicas: 0`). */
  pointer?: boolean;
}
type Schema = Record<number, Field>;

const f = (name: string, type: FieldType, extra: Partial<Field> = {}): Field => ({ name, type, ...extra });
const msg = (message: string): FieldType => ({ message });
const list = (name: string, type: FieldType): Field => f(name, type, { repeated: true });

/** Field numbers from k8s.io/api and k8s.io/apimachinery generated.proto (the parts the served kinds use). */
const SCHEMAS: Record<string, Schema> = {
  Unknown: { 1: f('typeMeta', msg('TypeMeta')), 2: f('raw', 'bytes'), 3: f('contentEncoding', 'string'), 4: f('contentType', 'string') },
  TypeMeta: { 1: f('apiVersion', 'string'), 2: f('kind', 'string') },
  ObjectMeta: {
    1: f('name', 'string'), 2: f('generateName', 'string'), 3: f('namespace', 'string'), 5: f('uid', 'string'), 6: f('resourceVersion', 'string'), 7: f('generation', 'int64'),
    8: f('creationTimestamp', 'time'), 11: f('labels', { map: 'string' }), 12: f('annotations', { map: 'string' }), 13: list('ownerReferences', msg('OwnerReference')), 14: list('finalizers', 'string'),
  },
  OwnerReference: { 1: f('kind', 'string'), 3: f('name', 'string'), 4: f('uid', 'string'), 5: f('apiVersion', 'string'), 6: f('controller', 'bool', { pointer: true }), 7: f('blockOwnerDeletion', 'bool', { pointer: true }) },
  LabelSelector: { 1: f('matchLabels', { map: 'string' }), 2: list('matchExpressions', msg('LabelSelectorRequirement')) },
  LabelSelectorRequirement: { 1: f('key', 'string'), 2: f('operator', 'string'), 3: list('values', 'string') },
  ConfigMap: { 1: f('metadata', msg('ObjectMeta')), 2: f('data', { map: 'string' }), 3: f('binaryData', { map: 'bytes' }), 4: f('immutable', 'bool', { pointer: true }) },
  Secret: { 1: f('metadata', msg('ObjectMeta')), 2: f('data', { map: 'bytes' }), 3: f('type', 'string'), 4: f('stringData', { map: 'string' }), 5: f('immutable', 'bool', { pointer: true }) },
  Namespace: { 1: f('metadata', msg('ObjectMeta')), 2: f('spec', msg('NamespaceSpec')) },
  NamespaceSpec: { 1: list('finalizers', 'string') },
  Service: { 1: f('metadata', msg('ObjectMeta')), 2: f('spec', msg('ServiceSpec')) },
  ServiceSpec: { 1: list('ports', msg('ServicePort')), 2: f('selector', { map: 'string' }), 3: f('clusterIP', 'string'), 4: f('type', 'string'), 7: f('sessionAffinity', 'string'), 10: f('externalName', 'string') },
  ServicePort: { 1: f('name', 'string'), 2: f('protocol', 'string'), 3: f('port', 'int32'), 4: f('targetPort', 'intOrString'), 5: f('nodePort', 'int32') },
  Pod: { 1: f('metadata', msg('ObjectMeta')), 2: f('spec', msg('PodSpec')) },
  PodTemplateSpec: { 1: f('metadata', msg('ObjectMeta')), 2: f('spec', msg('PodSpec')) },
  PodSpec: {
    2: list('containers', msg('Container')), 3: f('restartPolicy', 'string'), 4: f('terminationGracePeriodSeconds', 'int64', { pointer: true }), 6: f('dnsPolicy', 'string'), 7: f('nodeSelector', { map: 'string' }),
    8: f('serviceAccountName', 'string'), 10: f('nodeName', 'string'), 15: list('imagePullSecrets', msg('LocalObjectReference')), 19: f('schedulerName', 'string'), 20: list('initContainers', msg('Container')),
  },
  Container: {
    1: f('name', 'string'), 2: f('image', 'string'), 3: list('command', 'string'), 4: list('args', 'string'), 5: f('workingDir', 'string'), 6: list('ports', msg('ContainerPort')), 7: list('env', msg('EnvVar')),
    8: f('resources', msg('ResourceRequirements')), 13: f('terminationMessagePath', 'string'), 14: f('imagePullPolicy', 'string'), 16: f('stdin', 'bool'), 17: f('stdinOnce', 'bool'), 18: f('tty', 'bool'), 20: f('terminationMessagePolicy', 'string'),
  },
  ContainerPort: { 1: f('name', 'string'), 2: f('hostPort', 'int32'), 3: f('containerPort', 'int32'), 4: f('protocol', 'string'), 5: f('hostIP', 'string') },
  EnvVar: { 1: f('name', 'string'), 2: f('value', 'string') },
  ResourceRequirements: { 1: f('limits', { map: 'quantity' }), 2: f('requests', { map: 'quantity' }) },
  LocalObjectReference: { 1: f('name', 'string') },
  Deployment: { 1: f('metadata', msg('ObjectMeta')), 2: f('spec', msg('DeploymentSpec')) },
  DeploymentSpec: {
    1: f('replicas', 'int32', { pointer: true }), 2: f('selector', msg('LabelSelector')), 3: f('template', msg('PodTemplateSpec')), 4: f('strategy', msg('DeploymentStrategy')), 5: f('minReadySeconds', 'int32'),
    6: f('revisionHistoryLimit', 'int32', { pointer: true }), 7: f('paused', 'bool'), 9: f('progressDeadlineSeconds', 'int32', { pointer: true }),
  },
  DeploymentStrategy: { 1: f('type', 'string'), 2: f('rollingUpdate', msg('RollingUpdateDeployment')) },
  RollingUpdateDeployment: { 1: f('maxUnavailable', 'intOrString'), 2: f('maxSurge', 'intOrString') },
  SelfSubjectAccessReview: { 1: f('metadata', msg('ObjectMeta')), 2: f('spec', msg('SelfSubjectAccessReviewSpec')) },
  SelfSubjectAccessReviewSpec: { 1: f('resourceAttributes', msg('ResourceAttributes')), 2: f('nonResourceAttributes', msg('NonResourceAttributes')) },
  ResourceAttributes: { 1: f('namespace', 'string'), 2: f('verb', 'string'), 3: f('group', 'string'), 4: f('version', 'string'), 5: f('resource', 'string'), 6: f('subresource', 'string'), 7: f('name', 'string') },
  NonResourceAttributes: { 1: f('path', 'string'), 2: f('verb', 'string') },
  Time: { 1: f('seconds', 'int64'), 2: f('nanos', 'int32') },
  IntOrString: { 1: f('type', 'int64'), 2: f('intVal', 'int32'), 3: f('strVal', 'string') },
  Quantity: { 1: f('string', 'string') },
};

/** The kinds whose protobuf bodies the fixture decodes, by apiVersion/kind. */
const DECODABLE = new Set(['v1/ConfigMap', 'v1/Secret', 'v1/Namespace', 'v1/Service', 'v1/Pod', 'apps/v1/Deployment', 'authorization.k8s.io/v1/SelfSubjectAccessReview']);

class Reader {
  offset = 0;
  constructor(private readonly bytes: Buffer) {}

  get done(): boolean {
    return this.offset >= this.bytes.length;
  }

  varint(): bigint {
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (this.offset >= this.bytes.length) throw badRequest('protobuf: truncated varint');
      const byte = this.bytes[this.offset++] ?? 0;
      result |= BigInt(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return result;
    }
    throw badRequest('protobuf: varint too long');
  }

  take(length: number): Buffer {
    if (length < 0 || this.offset + length > this.bytes.length) throw badRequest('protobuf: truncated field');
    const out = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return out;
  }

  skip(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 1) this.take(8);
    else if (wireType === 2) this.take(Number(this.varint()));
    else if (wireType === 5) this.take(4);
    else throw badRequest(`protobuf: unsupported wire type ${wireType}`);
  }
}

const signed32 = (v: bigint): number => Number(BigInt.asIntN(32, v));
const signed64 = (v: bigint): number => Number(BigInt.asIntN(64, v));

function scalar(type: Scalar, reader: Reader, depth: number): Json {
  switch (type) {
    case 'int32':
      return signed32(reader.varint());
    case 'int64':
      return signed64(reader.varint());
    case 'bool':
      return reader.varint() !== 0n;
    case 'string':
      return reader.take(Number(reader.varint())).toString('utf8');
    case 'bytes':
      return reader.take(Number(reader.varint())).toString('base64');
    case 'time': {
      const t = decodeMessage('Time', reader.take(Number(reader.varint())), depth + 1);
      return typeof t.seconds === 'number' && t.seconds !== 0 ? new Date(t.seconds * 1000).toISOString().replace('.000Z', 'Z') : null;
    }
    case 'intOrString': {
      const v = decodeMessage('IntOrString', reader.take(Number(reader.varint())), depth + 1);
      return v.type === 1 ? (v.strVal ?? '') : (v.intVal ?? 0);
    }
    case 'quantity':
      return decodeMessage('Quantity', reader.take(Number(reader.varint())), depth + 1).string ?? '0';
  }
}

const isEmpty = (v: Json): boolean => v === '' || v === 0 || v === false || (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0);

function decodeMessage(name: string, bytes: Buffer, depth: number): JsonObject {
  if (depth > MAX_NESTING) throw badRequest('protobuf: nesting too deep');
  const schema = SCHEMAS[name] ?? {};
  const reader = new Reader(bytes);
  const out: JsonObject = {};
  while (!reader.done) {
    const tag = reader.varint();
    const number = Number(tag >> 3n);
    const wireType = Number(tag & 7n);
    const field = schema[number];
    if (!field) {
      reader.skip(wireType);
      continue;
    }
    let value: Json;
    if (typeof field.type === 'string') value = scalar(field.type, reader, depth);
    else if ('message' in field.type) value = decodeMessage(field.type.message, reader.take(Number(reader.varint())), depth + 1);
    else {
      const entry = new Reader(reader.take(Number(reader.varint())));
      let key = '';
      let entryValue: Json = '';
      while (!entry.done) {
        const entryTag = entry.varint();
        if (entryTag >> 3n === 1n) key = entry.take(Number(entry.varint())).toString('utf8');
        else if (entryTag >> 3n === 2n) entryValue = typeof field.type.map === 'string' ? scalar(field.type.map, entry, depth) : decodeMessage(field.type.map.message, entry.take(Number(entry.varint())), depth + 1);
        else entry.skip(Number(entryTag & 7n));
      }
      const map = (out[field.name] ?? {}) as JsonObject;
      setField(map, key, entryValue);
      out[field.name] = map;
      continue;
    }
    if (field.repeated) out[field.name] = [...((out[field.name] as Json[] | undefined) ?? []), value];
    else if (field.pointer || !isEmpty(value)) out[field.name] = value;
  }
  return out;
}

/** Decodes a protobuf request body into the JSON object it encodes (415 for kinds it cannot read). */
export function decodeProtobuf(body: Buffer): JsonObject {
  if (!body.subarray(0, PROTOBUF_MAGIC.length).equals(PROTOBUF_MAGIC)) throw badRequest('protobuf: missing the k8s magic prefix');
  const envelope = decodeMessage('Unknown', body.subarray(PROTOBUF_MAGIC.length), 0);
  const typeMeta = (envelope.typeMeta ?? {}) as JsonObject;
  const apiVersion = String(typeMeta.apiVersion ?? '');
  const kind = String(typeMeta.kind ?? '');
  if (!DECODABLE.has(`${apiVersion}/${kind}`)) throw unsupportedMediaType('application/vnd.kubernetes.protobuf', ['application/json', 'application/yaml']);
  const raw = Buffer.from(String(envelope.raw ?? ''), 'base64');
  return { apiVersion, kind, ...decodeMessage(kind, raw, 0) };
}
