import { err, ok, type Result } from '../result';

/**
 * A Kubernetes protobuf request body (typed clients send them: `kubectl create configmap`, `create
 * secret`, `create namespace`, `create serviceaccount`) read into the JSON object it encodes, so that
 * a reviewer can be shown it and the agent can send that JSON on approval. The body is the `k8s\0`
 * magic and a runtime.Unknown envelope (apiVersion, kind, raw object bytes in k8s.io/api's
 * generated.proto field numbers).
 *
 * Strict by design: the generated Go marshalers write every non-pointer field, even empty, so each
 * message's fields are listed whole; a field number not listed, a wire type that does not match, a
 * singular field sent twice, a timestamp set, or a kind not listed is refused, never skipped. What is
 * shown is then everything the caller sent. JSON follows the Go types' tags: empty strings, maps and
 * lists are left out (omitempty), a pointer's value is kept even when false.
 */

export const PROTOBUF_MEDIA_TYPE = 'application/vnd.kubernetes.protobuf';
const MAGIC = Buffer.from('k8s\u0000', 'latin1');
/** Messages nest this deep at most (the kinds read here nest three levels). */
const MAX_NESTING = 8;

type Scalar = 'string' | 'bytes' | 'int64' | 'bool' | 'emptyTime';
type FieldType = Scalar | { readonly message: string } | { readonly map: 'string' | 'bytes' };
interface Field {
  readonly name: string;
  readonly type: FieldType;
  readonly repeated?: boolean;
  /** A pointer in Go: present means set, even to a zero value. */
  readonly pointer?: boolean;
}
type Schema = Readonly<Record<number, Field>>;

const field = (name: string, type: FieldType, extra: Omit<Field, 'name' | 'type'> = {}): Field => ({ name, type, ...extra });
const repeated = (name: string, type: FieldType): Field => field(name, type, { repeated: true });
const message = (name: string): FieldType => ({ message: name });

/** Field numbers from k8s.io/apimachinery and k8s.io/api generated.proto (v0.32). */
const SCHEMAS: Readonly<Record<string, Schema>> = {
  Unknown: { 1: field('typeMeta', message('TypeMeta')), 2: field('raw', 'bytes'), 3: field('contentEncoding', 'string'), 4: field('contentType', 'string') },
  TypeMeta: { 1: field('apiVersion', 'string'), 2: field('kind', 'string') },
  // deletionTimestamp (9), deletionGracePeriodSeconds (10) and managedFields (17) are the server's: a client sending them is refused.
  ObjectMeta: {
    1: field('name', 'string'),
    2: field('generateName', 'string'),
    3: field('namespace', 'string'),
    4: field('selfLink', 'string'),
    5: field('uid', 'string'),
    6: field('resourceVersion', 'string'),
    7: field('generation', 'int64'),
    8: field('creationTimestamp', 'emptyTime'),
    11: field('labels', { map: 'string' }),
    12: field('annotations', { map: 'string' }),
    13: repeated('ownerReferences', message('OwnerReference')),
    14: repeated('finalizers', 'string'),
  },
  OwnerReference: {
    1: field('kind', 'string'),
    3: field('name', 'string'),
    4: field('uid', 'string'),
    5: field('apiVersion', 'string'),
    6: field('controller', 'bool', { pointer: true }),
    7: field('blockOwnerDeletion', 'bool', { pointer: true }),
  },
  ConfigMap: { 1: field('metadata', message('ObjectMeta')), 2: field('data', { map: 'string' }), 3: field('binaryData', { map: 'bytes' }), 4: field('immutable', 'bool', { pointer: true }) },
  Secret: { 1: field('metadata', message('ObjectMeta')), 2: field('data', { map: 'bytes' }), 3: field('type', 'string'), 4: field('stringData', { map: 'string' }), 5: field('immutable', 'bool', { pointer: true }) },
  Namespace: { 1: field('metadata', message('ObjectMeta')), 2: field('spec', message('NamespaceSpec')), 3: field('status', message('NamespaceStatus')) },
  NamespaceSpec: { 1: repeated('finalizers', 'string') },
  // conditions (2) are the server's.
  NamespaceStatus: { 1: field('phase', 'string') },
  ServiceAccount: {
    1: field('metadata', message('ObjectMeta')),
    2: repeated('secrets', message('ObjectReference')),
    3: repeated('imagePullSecrets', message('LocalObjectReference')),
    4: field('automountServiceAccountToken', 'bool', { pointer: true }),
  },
  ObjectReference: {
    1: field('kind', 'string'),
    2: field('namespace', 'string'),
    3: field('name', 'string'),
    4: field('uid', 'string'),
    5: field('apiVersion', 'string'),
    6: field('resourceVersion', 'string'),
    7: field('fieldPath', 'string'),
  },
  LocalObjectReference: { 1: field('name', 'string') },
};

/** The kinds read from protobuf, by apiVersion/kind: what `kubectl create` makes without a manifest, where the schema is small enough to list whole. */
const PROTOBUF_KINDS: ReadonlySet<string> = new Set(['v1/ConfigMap', 'v1/Secret', 'v1/Namespace', 'v1/ServiceAccount']);

type Json = string | number | boolean | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

class ProtobufError extends Error {}

class Reader {
  private offset = 0;

  constructor(private readonly bytes: Buffer) {}

  get done(): boolean {
    return this.offset >= this.bytes.length;
  }

  varint(): bigint {
    let value = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      const byte = this.bytes[this.offset++];
      if (byte === undefined) throw new ProtobufError('a varint is cut short');
      value |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return value;
    }
    throw new ProtobufError('a varint is over 10 bytes');
  }

  /** A length-delimited field's bytes. */
  bytesField(): Buffer {
    const length = this.varint();
    if (length > BigInt(this.bytes.length - this.offset)) throw new ProtobufError('a field runs past the end of its message');
    const out = this.bytes.subarray(this.offset, this.offset + Number(length));
    this.offset += out.length;
    return out;
  }
}

const WIRE_VARINT = 0;
const WIRE_LENGTH = 2;

const utf8 = (bytes: Buffer): string => {
  const text = bytes.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(bytes)) throw new ProtobufError('a string is not valid UTF-8');
  return text;
};

function int64(v: bigint): number {
  const n = BigInt.asIntN(64, v);
  if (n > BigInt(Number.MAX_SAFE_INTEGER) || n < BigInt(Number.MIN_SAFE_INTEGER)) throw new ProtobufError('an integer is beyond 2^53');
  return Number(n);
}

function scalar(type: Scalar, reader: Reader): Json | undefined {
  switch (type) {
    case 'string':
      return utf8(reader.bytesField());
    case 'bytes':
      return reader.bytesField().toString('base64');
    case 'int64':
      return int64(reader.varint());
    case 'bool': {
      const v = reader.varint();
      if (v > 1n) throw new ProtobufError('a bool is neither 0 nor 1');
      return v === 1n;
    }
    case 'emptyTime':
      // A client never sets creationTimestamp; Go writes the zero time as an empty message.
      if (reader.bytesField().length !== 0) throw new ProtobufError('the body sets a timestamp the agent does not show');
      return undefined;
  }
}

const wireTypeOf = (f: Field): number => (f.type === 'int64' || f.type === 'bool' ? WIRE_VARINT : WIRE_LENGTH);

function mapEntry(bytes: Buffer, valueType: 'string' | 'bytes'): [string, Json] {
  const entry = new Reader(bytes);
  let key: string | undefined;
  let value: Json | undefined;
  while (!entry.done) {
    const tag = entry.varint();
    if (tag === BigInt((1 << 3) | WIRE_LENGTH) && key === undefined) key = utf8(entry.bytesField());
    else if (tag === BigInt((2 << 3) | WIRE_LENGTH) && value === undefined) value = scalar(valueType, entry);
    else throw new ProtobufError('a map entry has a field other than one key and one value');
  }
  return [key ?? '', value ?? ''];
}

function decodeMessage(name: string, bytes: Buffer, depth: number): JsonObject {
  if (depth > MAX_NESTING) throw new ProtobufError('messages nest too deep');
  const schema = SCHEMAS[name];
  if (!schema) throw new ProtobufError(`no schema for ${name}`);
  const reader = new Reader(bytes);
  const out: JsonObject = {};
  const seen = new Set<number>();
  while (!reader.done) {
    const tag = reader.varint();
    const number = Number(tag >> 3n);
    const f = schema[number];
    if (!f) throw new ProtobufError(`${name} has a field (${number}) the agent does not know`);
    if (Number(tag & 7n) !== wireTypeOf(f)) throw new ProtobufError(`${name}.${f.name} has the wrong wire type`);
    const type = f.type;
    if (typeof type === 'object' && 'map' in type) {
      const [key, value] = mapEntry(reader.bytesField(), type.map);
      const map = (out[f.name] ?? {}) as JsonObject;
      if (Object.hasOwn(map, key)) throw new ProtobufError(`${name}.${f.name} has the key ${JSON.stringify(key)} twice`);
      // Defined, not assigned: a key such as __proto__ (a valid ConfigMap key) is data like any other.
      Object.defineProperty(map, key, { value, enumerable: true, writable: true, configurable: true });
      out[f.name] = map;
      continue;
    }
    if (!f.repeated) {
      if (seen.has(number)) throw new ProtobufError(`${name}.${f.name} is sent twice`);
      seen.add(number);
    }
    const value = typeof type === 'object' ? decodeMessage(type.message, reader.bytesField(), depth + 1) : scalar(type, reader);
    if (value === undefined) continue;
    if (f.repeated) ((out[f.name] ??= []) as Json[]).push(value);
    else if (f.pointer || !isEmpty(value)) out[f.name] = value;
  }
  return out;
}

const isEmpty = (v: Json): boolean => v === '' || v === 0 || v === false || (typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0);

/** Whether a body carries the protobuf magic. */
const isProtobufBody = (body: Buffer): boolean => body.subarray(0, MAGIC.length).equals(MAGIC);

/** The JSON object a protobuf body encodes (apiVersion and kind first); an error naming what could not be read. */
export function decodeProtobufObject(body: Buffer): Result<Record<string, unknown>, string> {
  if (!isProtobufBody(body)) return err('the body lacks the k8s protobuf prefix');
  try {
    const envelope = decodeMessage('Unknown', body.subarray(MAGIC.length), 0);
    const typeMeta = (envelope.typeMeta ?? {}) as JsonObject;
    const apiVersion = typeof typeMeta.apiVersion === 'string' ? typeMeta.apiVersion : '';
    const kind = typeof typeMeta.kind === 'string' ? typeMeta.kind : '';
    if (envelope.contentEncoding !== undefined || envelope.contentType !== undefined) return err('the protobuf envelope names an encoding the agent does not read');
    if (!PROTOBUF_KINDS.has(`${apiVersion}/${kind}`)) {
      return err(`the agent reads protobuf bodies of ${[...PROTOBUF_KINDS].map((k) => k.slice(k.indexOf('/') + 1)).join(', ')}, not ${kind || 'an object without a kind'}`);
    }
    const raw = Buffer.from(typeof envelope.raw === 'string' ? envelope.raw : '', 'base64');
    return ok({ apiVersion, kind, ...decodeMessage(kind, raw, 0) });
  } catch (e) {
    if (e instanceof ProtobufError) return err(`the protobuf body cannot be read: ${e.message}`);
    throw e;
  }
}
