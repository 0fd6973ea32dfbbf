import { clone, field, isObject, metadataOf, objects, type Json, type JsonObject } from './json';
import { mergeKeyFor, strategicMerge } from './patch';
import { applyConflict } from './status';

/**
 * Field ownership as server-side apply tracks it (`metadata.managedFields`, FieldsV1): which manager
 * set which leaf field. A path is a list of FieldsV1 segments (`f:spec`, `k:{"name":"web"}`);
 * unkeyed lists are atomic leaves.
 */
type Segment = string;
type FieldPath = Segment[];

const SERVER_OWNED_METADATA = new Set(['name', 'namespace', 'uid', 'resourceVersion', 'creationTimestamp', 'generation', 'managedFields', 'deletionTimestamp', 'selfLink']);

function flattenInto(value: Json, path: FieldPath, parentField: string, out: Map<string, { path: FieldPath; value: Json }>): void {
  if (isObject(value) && Object.keys(value).length > 0) {
    for (const [key, child] of Object.entries(value)) flattenInto(child, [...path, `f:${key}`], key, out);
    return;
  }
  const first = Array.isArray(value) ? value.find(isObject) : undefined;
  const key = first ? mergeKeyFor(parentField, first) : undefined;
  if (Array.isArray(value) && key && value.every((item) => isObject(item) && item[key] !== undefined)) {
    for (const item of objects(value)) {
      const itemPath = [...path, `k:${JSON.stringify({ [key]: item[key] })}`];
      out.set(JSON.stringify(itemPath), { path: itemPath, value: { [key]: item[key] ?? null } });
      for (const [k, child] of Object.entries(item)) flattenInto(child, [...itemPath, `f:${k}`], k, out);
    }
    return;
  }
  out.set(JSON.stringify(path), { path, value });
}

/** The leaf fields of an object a manager can own (identity, server-set metadata and status excluded). */
export function leafFields(object: JsonObject): Map<string, { path: FieldPath; value: Json }> {
  const out = new Map<string, { path: FieldPath; value: Json }>();
  for (const [key, value] of Object.entries(object)) {
    if (key === 'apiVersion' || key === 'kind' || key === 'status') continue;
    if (key === 'metadata' && isObject(value)) {
      for (const [m, v] of Object.entries(value)) if (!SERVER_OWNED_METADATA.has(m)) flattenInto(v, ['f:metadata', `f:${m}`], m, out);
    } else flattenInto(value, [`f:${key}`], key, out);
  }
  return out;
}

/** The FieldsV1 tree of a set of paths. */
function toFieldsV1(paths: FieldPath[]): JsonObject {
  const root: JsonObject = {};
  for (const path of paths) {
    let node = root;
    for (const segment of path) {
      const next = isObject(node[segment]) ? (node[segment] as JsonObject) : {};
      node[segment] = next;
      if (segment.startsWith('k:')) next['.'] = {};
      node = next;
    }
  }
  return root;
}

function fromFieldsV1(tree: JsonObject, prefix: FieldPath = [], out: FieldPath[] = []): FieldPath[] {
  const children = Object.entries(tree).filter(([k]) => k !== '.');
  if (children.length === 0 || prefix[prefix.length - 1]?.startsWith('k:')) if (prefix.length) out.push(prefix);
  for (const [segment, child] of children) fromFieldsV1(isObject(child) ? child : {}, [...prefix, segment], out);
  return out;
}

interface Ownership {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  subresource?: string;
  paths: Map<string, FieldPath>;
  /** Changed by this request (its `time` moves). */
  dirty?: boolean;
}

function ownershipOf(object: JsonObject): Ownership[] {
  return objects(metadataOf(object).managedFields).map((e) => ({
    manager: String(e.manager ?? ''),
    operation: e.operation === 'Apply' ? 'Apply' : 'Update',
    apiVersion: String(e.apiVersion ?? ''),
    ...(typeof e.subresource === 'string' ? { subresource: e.subresource } : {}),
    paths: new Map(fromFieldsV1(field(e, 'fieldsV1')).map((p) => [JSON.stringify(p), p])),
  }));
}

function writeOwnership(object: JsonObject, owners: Ownership[], time: string): void {
  const kept = owners.filter((o) => o.paths.size > 0);
  const previous = new Map(objects(metadataOf(object).managedFields).map((e) => [`${String(e.manager)}/${String(e.operation)}`, e.time]));
  const entries: JsonObject[] = kept.map((o) => ({
    manager: o.manager,
    operation: o.operation,
    apiVersion: o.apiVersion,
    time: o.dirty ? time : (previous.get(`${o.manager}/${o.operation}`) ?? time),
    fieldsType: 'FieldsV1',
    fieldsV1: toFieldsV1([...o.paths.values()]),
    ...(o.subresource ? { subresource: o.subresource } : {}),
  }));
  const metadata = isObject(object.metadata) ? object.metadata : (object.metadata = {});
  if (entries.length) metadata.managedFields = entries;
  else delete metadata.managedFields;
}

function ownerFor(owners: Ownership[], manager: string, operation: Ownership['operation'], apiVersion: string, subresource: string | undefined): Ownership {
  let owner = owners.find((o) => o.manager === manager && o.operation === operation && o.subresource === subresource);
  if (!owner) {
    owner = { manager, operation, apiVersion, ...(subresource ? { subresource } : {}), paths: new Map() };
    owners.push(owner);
  }
  return owner;
}

/** After a non-apply write: the writer owns every leaf it changed; removed leaves are owned by nobody. */
export function recordUpdate(before: JsonObject | undefined, after: JsonObject, manager: string, apiVersion: string, time: string, subresource?: string): void {
  const owners = before ? ownershipOf(before) : [];
  const old = before ? leafFields(before) : new Map();
  const now = leafFields(after);
  const writer = ownerFor(owners, manager, 'Update', apiVersion, subresource);
  for (const [key, leaf] of now) {
    const previous = old.get(key);
    if (previous && JSON.stringify(previous.value) === JSON.stringify(leaf.value)) continue;
    for (const o of owners) o.paths.delete(key);
    writer.paths.set(key, leaf.path);
    writer.dirty = true;
  }
  for (const key of old.keys()) if (!now.has(key)) for (const o of owners) o.paths.delete(key);
  writeOwnership(after, owners, time);
}

function deletePath(object: JsonObject, path: FieldPath): void {
  let node: Json = object;
  for (const [i, segment] of path.entries()) {
    const last = i === path.length - 1;
    if (segment.startsWith('f:') && isObject(node)) {
      const key = segment.slice(2);
      if (last) delete node[key];
      else node = node[key] ?? null;
    } else if (segment.startsWith('k:') && Array.isArray(node)) {
      const want = JSON.parse(segment.slice(2)) as JsonObject;
      const index = node.findIndex((item) => isObject(item) && Object.entries(want).every(([k, v]) => item[k] === v));
      if (index < 0) return;
      if (last) node.splice(index, 1);
      else node = node[index] ?? null;
    } else return;
  }
}

const describePath = (path: FieldPath): string => path.map((s) => (s.startsWith('f:') ? `.${s.slice(2)}` : `[${s.slice(2).replace(/^\{"(.*)":(.*)\}$/, '$1=$2')}]`)).join('');

/**
 * Server-side apply of `config` by `manager` onto `live` (undefined on create): conflicts with other
 * managers' differing values are a 409 unless `force`; fields this manager applied before and no
 * longer applies are removed unless someone else owns them.
 */
export function serverSideApply(live: JsonObject | undefined, config: JsonObject, manager: string, apiVersion: string, force: boolean, time: string, subresource?: string): JsonObject {
  const base = live ? clone(live) : {};
  const owners = live ? ownershipOf(live) : [];
  const applied = leafFields(config);
  const current = live ? leafFields(live) : new Map();
  const conflicts: { owner: Ownership; key: string; path: FieldPath }[] = [];
  for (const owner of owners) {
    if (owner.manager === manager && owner.operation === 'Apply') continue;
    for (const [key, path] of owner.paths) {
      const mine = applied.get(key);
      const theirs = current.get(key);
      if (mine && theirs && JSON.stringify(mine.value) !== JSON.stringify(theirs.value)) conflicts.push({ owner, key, path });
    }
  }
  if (conflicts.length && !force) {
    const causes = conflicts.map((c) => ({ reason: 'FieldManagerConflict', message: `conflict with "${c.owner.manager}"${c.owner.operation === 'Update' ? ` using ${c.owner.apiVersion}` : ''}`, field: describePath(c.path) }));
    const lines = causes.map((c) => `- ${c.message}: ${c.field}`).join('\n');
    const message = `Apply failed with ${conflicts.length} conflict${conflicts.length === 1 ? '' : 's'}: ${conflicts.length === 1 ? `${causes[0]?.message}: ${causes[0]?.field}` : `\n${lines}`}`;
    throw applyConflict(message, causes);
  }
  for (const c of conflicts) c.owner.paths.delete(c.key);
  const me = ownerFor(owners, manager, 'Apply', apiVersion, subresource);
  const result = strategicMerge(base, config) as JsonObject;
  for (const [key, path] of me.paths) {
    if (applied.has(key)) continue;
    if (!owners.some((o) => o !== me && o.paths.has(key))) deletePath(result, path);
  }
  me.paths = new Map([...applied].map(([key, leaf]) => [key, leaf.path]));
  me.dirty = true;
  writeOwnership(result, owners, time);
  return result;
}
