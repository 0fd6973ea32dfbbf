import type { MaskingProfile } from '../masking/profile';
import { FULL_MASK } from '../masking/styles';

/**
 * Masking of decoded Kubernetes objects. Secret values are always masked in full, whatever the policy:
 * `stringData` values become `****` and `data` values the base64 of it, `KioqKg==`, so a client that
 * decodes them (`kubectl get secret -o jsonpath='{.data.password}' | base64 -d`) prints `****`. Keys
 * stay, so callers see which keys a Secret has. With the caller's mask rules (a profile), the values
 * where configuration hides secrets go through the rules and detectors: ConfigMap `data` and
 * `binaryData`, container `env[].value`, `args` and `command`, annotations, Table cells. A value's
 * source, for rules' `columns` and `scanColumns`, is `Kind.field.key` (`ConfigMap.data.password`,
 * `Deployment.env.DB_URL`, `Pod.annotations.note`, `Pod.args`, `Table.cells`).
 */

export const SECRET_STRING_MASK = FULL_MASK;
/** base64 of `****`. */
export const SECRET_DATA_MASK = Buffer.from(FULL_MASK).toString('base64');
/** kubectl's client-side apply keeps the whole applied manifest here: for a Secret, its values in clear. */
export const LAST_APPLIED_ANNOTATION = 'kubectl.kubernetes.io/last-applied-configuration';
/** Lists within lists within last-applied annotations: deeper than this is not an API response. */
export const MAX_KUBE_OBJECT_NESTING = 8;

export interface KubeMasking {
  /** The caller's compiled mask rules; undefined when none apply (Secrets are masked all the same). */
  readonly profile: MaskingProfile | undefined;
  /**
   * The request was for Secrets: every object in the response is one, whatever kind it says it is
   * (`PartialObjectMetadata` in a Table's rows or a metadata-only list still carries the annotations).
   */
  readonly secrets: boolean;
}

export class ObjectMaskingError extends Error {
  constructor(message: string) {
    super(`twokey: ${message}`);
    this.name = 'ObjectMaskingError';
  }
}

type JsonObject = Record<string, unknown>;
const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * One decoded API object, list or Table, masked (a new value; the input is not changed).
 * `kindHint` is the kind its list gives items that carry none (a `SecretList`'s items have no `kind`).
 */
export function maskKubeObject(doc: unknown, m: KubeMasking, kindHint?: string, depth = 0): unknown {
  if (depth > MAX_KUBE_OBJECT_NESTING) throw new ObjectMaskingError('the response nests objects too deeply to mask');
  if (!isObject(doc)) return doc;
  const kind = typeof doc.kind === 'string' ? doc.kind : kindHint;
  if (kind === 'Table' && Array.isArray(doc.rows)) return { ...doc, rows: doc.rows.map((row) => maskTableRow(row, m, depth + 1)) };
  if (kind !== undefined && kind.endsWith('List') && Array.isArray(doc.items)) {
    const itemKind = listItemKind(kind);
    return { ...doc, items: doc.items.map((item) => maskKubeObject(item, m, itemKind, depth + 1)) };
  }
  // An item of a SecretList is a Secret whatever kind it claims.
  return maskSingleObject(doc, kind ?? 'Object', kindHint === 'Secret' ? { ...m, secrets: true } : m, depth);
}

/** The kind of a list's items (`SecretList`: `Secret`); undefined for `List`, whose items each say theirs. */
export function listItemKind(listKind: unknown): string | undefined {
  if (typeof listKind !== 'string' || listKind === 'List' || !listKind.endsWith('List')) return undefined;
  return listKind.slice(0, -'List'.length);
}

/**
 * A watch event (`{"type":"ADDED","object":{...}}`; an ERROR event's object is a Status). Anything
 * else in a watch stream is masked as an object of its own.
 */
export function maskWatchEvent(event: unknown, m: KubeMasking): unknown {
  if (!isObject(event) || typeof event.type !== 'string' || !isObject(event.object)) return maskKubeObject(event, m);
  return { ...event, object: maskKubeObject(event.object, m, undefined, 1) };
}

/** A Table row: its cells through the detectors, its object (metadata only unless `includeObject=Object`) as an object. */
export function maskTableRow(row: unknown, m: KubeMasking, depth = 0): unknown {
  if (!isObject(row)) return row;
  const out: JsonObject = { ...row };
  const profile = m.profile;
  if (profile && Array.isArray(row.cells)) out.cells = row.cells.map((c) => (typeof c === 'string' ? profile.maskValue(c, 'Table.cells') : c));
  if ('object' in row) out.object = maskKubeObject(row.object, m, undefined, depth + 1);
  return out;
}

function maskSingleObject(obj: JsonObject, kind: string, m: KubeMasking, depth: number): JsonObject {
  const asSecret = m.secrets || kind === 'Secret';
  const out: JsonObject = { ...obj };
  if (isObject(obj.metadata)) out.metadata = maskMetadata(obj.metadata, kind, asSecret, m, depth);
  if (asSecret) {
    if ('data' in obj) out.data = maskSecretValues(obj.data, SECRET_DATA_MASK);
    if ('stringData' in obj) out.stringData = maskSecretValues(obj.stringData, SECRET_STRING_MASK);
    const values = secretValues(obj);
    if (values.length > 0 && isObject(out.metadata)) out.metadata = maskCopies(out.metadata, values, 0) as JsonObject;
    return out;
  }
  const profile = m.profile;
  if (!profile) return out;
  if (kind === 'ConfigMap') {
    if (isObject(obj.data)) out.data = mapStrings(obj.data, (v, key) => profile.maskValue(v, `ConfigMap.data.${key}`));
    if (isObject(obj.binaryData)) out.binaryData = mapStrings(obj.binaryData, (v, key) => maskBase64(v, (text) => profile.maskValue(text, `ConfigMap.binaryData.${key}`)));
  }
  return maskPodSpecs(out, kind, profile);
}

/** A Secret value shorter than this is masked elsewhere in the Secret only where it is the whole string (a longer one wherever it appears). */
export const MIN_SECRET_VALUE_SEARCH_CHARS = 8;

/** Maps within a Secret's metadata (managed fields' field sets nest a level per field): deeper is not an API response. */
export const MAX_METADATA_NESTING = 32;

/** The Secret's values as stored (`data`, base64) and as given (`stringData`). */
function secretValues(obj: JsonObject): string[] {
  return [obj.data, obj.stringData].flatMap((values) => (isObject(values) ? Object.values(values).filter((v): v is string => typeof v === 'string' && v.length > 0) : []));
}

/**
 * A Secret's metadata with any string that holds one of its values masked: an approved JSON patch can
 * `copy` a value from `data` into an annotation or an owner reference, where a read would show it.
 */
function maskCopies(value: unknown, secrets: readonly string[], depth: number): unknown {
  if (depth > MAX_METADATA_NESTING) throw new ObjectMaskingError('the response nests metadata too deeply to mask');
  if (typeof value === 'string') return secrets.some((v) => value === v || (v.length >= MIN_SECRET_VALUE_SEARCH_CHARS && value.includes(v))) ? SECRET_STRING_MASK : value;
  if (Array.isArray(value)) return value.map((v) => maskCopies(v, secrets, depth + 1));
  if (!isObject(value)) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, maskCopies(v, secrets, depth + 1)]));
}

/** Every value replaced, keys kept; anything that is not a map of strings is replaced whole. */
function maskSecretValues(values: unknown, mask: string): unknown {
  if (values === null || values === undefined) return values;
  if (!isObject(values)) return mask;
  return Object.fromEntries(Object.keys(values).map((key) => [key, mask]));
}

function maskMetadata(meta: JsonObject, kind: string, asSecret: boolean, m: KubeMasking, depth: number): JsonObject {
  const annotations = meta.annotations;
  if (!isObject(annotations)) return meta;
  const profile = m.profile;
  const masked = mapStrings(annotations, (value, key) => {
    if (key === LAST_APPLIED_ANNOTATION) return maskLastApplied(value, asSecret, m, depth);
    return profile ? profile.maskValue(value, `${kind}.annotations.${key}`) : value;
  });
  return { ...meta, annotations: masked };
}

/**
 * The applied manifest, decoded and masked as the object it is (as a Secret when the object carrying it
 * is one, whatever it claims), then encoded again as kubectl writes it. Text that is not a JSON object
 * is masked whole on a Secret and through the detectors elsewhere.
 */
function maskLastApplied(value: string, asSecret: boolean, m: KubeMasking, depth: number): string {
  let applied: unknown;
  try {
    applied = JSON.parse(value);
  } catch {
    applied = undefined;
  }
  if (!isObject(applied)) {
    if (asSecret) return SECRET_STRING_MASK;
    return m.profile ? m.profile.maskValue(value, 'Object.annotations.last-applied-configuration') : value;
  }
  const masked = maskKubeObject(applied, { profile: m.profile, secrets: asSecret }, undefined, depth + 1);
  return JSON.stringify(masked) + (value.endsWith('\n') ? '\n' : '');
}

/** Pod specs where workload kinds keep them: a Pod's `spec`, a template's, a CronJob's job template's, a ControllerRevision's copy. */
const POD_SPEC_PATHS: readonly (readonly string[])[] = [
  ['spec'],
  ['template', 'spec'],
  ['spec', 'template', 'spec'],
  ['spec', 'jobTemplate', 'spec', 'template', 'spec'],
  ['data', 'spec', 'template', 'spec'],
];
const CONTAINER_LISTS = ['containers', 'initContainers', 'ephemeralContainers'];

function maskPodSpecs(obj: JsonObject, kind: string, profile: MaskingProfile): JsonObject {
  let out = obj;
  for (const path of POD_SPEC_PATHS) {
    const spec = getPath(out, path);
    if (!isObject(spec) || !CONTAINER_LISTS.some((k) => Array.isArray(spec[k]))) continue;
    const masked: JsonObject = { ...spec };
    for (const list of CONTAINER_LISTS) {
      const containers = spec[list];
      if (Array.isArray(containers)) masked[list] = containers.map((c) => maskContainer(c, kind, profile));
    }
    out = setPath(out, path, masked);
  }
  return out;
}

function maskContainer(container: unknown, kind: string, profile: MaskingProfile): unknown {
  if (!isObject(container)) return container;
  const out: JsonObject = { ...container };
  if (Array.isArray(container.env)) {
    out.env = container.env.map((e: unknown) =>
      isObject(e) && typeof e.value === 'string' ? { ...e, value: profile.maskValue(e.value, `${kind}.env.${typeof e.name === 'string' ? e.name : ''}`) } : e,
    );
  }
  for (const field of ['args', 'command'] as const) {
    const list = container[field];
    if (Array.isArray(list)) out[field] = list.map((a: unknown) => (typeof a === 'string' ? profile.maskValue(a, `${kind}.${field}`) : a));
  }
  return out;
}

/** Keys are user data (a ConfigMap key may be `__proto__`): the copy defines them, never assigns. */
function mapStrings(values: JsonObject, mask: (value: string, key: string) => string): JsonObject {
  return Object.fromEntries(Object.entries(values).map(([key, value]) => [key, typeof value === 'string' ? mask(value, key) : value]));
}

/** A base64 value masked as text; unchanged when nothing in it was masked (binary stays byte for byte). */
function maskBase64(value: string, mask: (text: string) => string): string {
  const text = Buffer.from(value, 'base64').toString('utf8');
  const masked = mask(text);
  return masked === text ? value : Buffer.from(masked).toString('base64');
}

function getPath(obj: JsonObject, path: readonly string[]): unknown {
  let at: unknown = obj;
  for (const key of path) at = isObject(at) ? at[key] : undefined;
  return at;
}

/** A copy of `obj` with the value at `path` replaced (every object on the way copied, the input untouched). */
function setPath(obj: JsonObject, path: readonly string[], value: unknown): JsonObject {
  const [head, ...rest] = path as [string, ...string[]];
  const child = obj[head];
  return { ...obj, [head]: rest.length === 0 ? value : setPath(isObject(child) ? child : {}, rest, value) };
}
