import { err, ok, type Result } from '../result';

/**
 * The object a patch would produce from the live one, for the reviewer's diff. JSON patch (RFC 6902)
 * and JSON merge patch (RFC 7386) are computed exactly; a strategic merge patch and a server-side
 * apply are approximated (the API server merges lists by keys from each type's schema, and apply
 * removes fields by ownership): the merge keys of the built-in types are known here, and the
 * reviewer is told the result is approximate. The patch itself is always shown beside it. Pure; the
 * inputs are not changed. Keys are set as own properties, so a `__proto__` key stays a key.
 */

/** kube-apiserver's own limit on the operations of one JSON patch. */
export const MAX_JSON_PATCH_OPERATIONS = 10_000;
/**
 * Bytes (as JSON) the `copy` operations of one patch may duplicate: a copy of the root doubles the
 * document, so 40 of them would need terabytes. The API server bounds copies too (json-patch's
 * accumulated copy size limit).
 */
export const MAX_JSON_PATCH_COPY_BYTES = 3 * 1024 * 1024;

type JsonObject = Record<string, unknown>;
const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

function setOwn(obj: JsonObject, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/** RFC 7386: objects merge member by member, `null` removes, anything else replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const out: JsonObject = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else setOwn(out, key, mergePatch(out[key], value));
  }
  return out;
}

/**
 * Merge keys of the built-in types' lists (`patchMergeKey` in their Go definitions): a list under one
 * of these names is merged item by item. `ports` is a container's (containerPort) or a Service's (port).
 */
const MERGE_KEYS: Readonly<Record<string, readonly string[]>> = {
  containers: ['name'],
  initContainers: ['name'],
  ephemeralContainers: ['name'],
  env: ['name'],
  volumes: ['name'],
  volumeMounts: ['mountPath'],
  volumeDevices: ['devicePath'],
  ports: ['containerPort', 'port'],
  imagePullSecrets: ['name'],
  hostAliases: ['ip'],
  ownerReferences: ['uid'],
  conditions: ['type'],
  topologySpreadConstraints: ['topologyKey'],
  resourceClaims: ['name'],
};
/** Lists of scalars whose strategy is merge (a union), not replace. */
const MERGED_SCALAR_LISTS = new Set(['finalizers']);
const DIRECTIVE = '$patch';
const DELETE_FROM_PRIMITIVE_LIST = '$deleteFromPrimitiveList/';

/**
 * A strategic merge patch, or a server-side apply's configuration (`apply`: nothing is removed, as
 * the server keeps fields other managers own), approximated as described above. `approximate` is set
 * when the patch uses what this reading leaves out (ordering and retainKeys directives).
 */
export function strategicMerge(target: unknown, patch: unknown, apply = false): { result: unknown; approximate: boolean } {
  const state = { approximate: apply };
  return { result: mergeStrategic(target, patch, apply, state), approximate: state.approximate };
}

function mergeStrategic(target: unknown, patch: unknown, apply: boolean, state: { approximate: boolean }): unknown {
  if (!isObject(patch)) return patch;
  const { [DIRECTIVE]: directive, ...fields } = patch;
  if (directive === 'replace') return fields;
  // As the API server reads a map's directive: `delete` empties the map; any other value it refuses.
  if (directive === 'delete') return {};
  if (directive !== undefined) state.approximate = true;
  const out: JsonObject = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(fields)) {
    if (key.startsWith(DELETE_FROM_PRIMITIVE_LIST)) {
      const list = key.slice(DELETE_FROM_PRIMITIVE_LIST.length);
      const current = out[list];
      if (Array.isArray(current) && Array.isArray(value)) setOwn(out, list, current.filter((v) => !value.includes(v)));
      continue;
    }
    if (key.startsWith('$')) {
      state.approximate = true;
      continue;
    }
    if (value === null) {
      if (!apply) delete out[key];
      continue;
    }
    const current = out[key];
    if (Array.isArray(value)) setOwn(out, key, mergeList(key, current, value, apply, state));
    else setOwn(out, key, mergeStrategic(current, value, apply, state));
  }
  return out;
}

function mergeList(key: string, current: unknown, patch: readonly unknown[], apply: boolean, state: { approximate: boolean }): unknown[] {
  // A `{$patch: replace}` item makes the list the patch's other items, whatever was there.
  if (patch.some((item) => isObject(item) && item[DIRECTIVE] === 'replace')) {
    return patch.filter((item) => !(isObject(item) && DIRECTIVE in item)).map((item) => mergeStrategic(undefined, item, apply, state));
  }
  if (!Array.isArray(current)) return patch.filter((item) => !(isObject(item) && item[DIRECTIVE] === 'delete')).map((item) => mergeStrategic(undefined, item, apply, state));
  if (MERGED_SCALAR_LISTS.has(key)) return [...current, ...patch.filter((v) => !current.includes(v))];
  const mergeKey = (MERGE_KEYS[key] ?? []).find((k) => patch.some((item) => isObject(item) && k in item));
  if (mergeKey === undefined) return patch.map((item) => mergeStrategic(undefined, item, apply, state));
  // Items found by their key through an index: searching the list for each patch item was quadratic
  // (a held 512 KB patch of 29,000 env entries took 8 s of the event loop).
  const out = [...current];
  const indexOf = new Map<unknown, number>();
  out.forEach((c, i) => isObject(c) && !indexOf.has(c[mergeKey]) && indexOf.set(c[mergeKey], i));
  const deleted = new Set<number>();
  for (const item of patch) {
    if (!isObject(item)) continue;
    const at = indexOf.get(item[mergeKey]);
    if (item[DIRECTIVE] === 'delete') {
      if (at !== undefined) deleted.add(at);
      indexOf.delete(item[mergeKey]);
    } else if (at !== undefined) out[at] = mergeStrategic(out[at], item, apply, state);
    else {
      indexOf.set(item[mergeKey], out.length);
      out.push(mergeStrategic(undefined, item, apply, state));
    }
  }
  return deleted.size ? out.filter((_, i) => !deleted.has(i)) : out;
}

export type JsonPatchProblem = { readonly operation: number; readonly message: string };

/** RFC 6902 on a copy of `target`; a problem names the first operation that does not apply (the API server would refuse the patch). */
export function applyJsonPatch(target: unknown, operations: unknown): Result<unknown, JsonPatchProblem> {
  if (!Array.isArray(operations)) return err({ operation: -1, message: 'a JSON patch is an array of operations' });
  if (operations.length > MAX_JSON_PATCH_OPERATIONS) return err({ operation: -1, message: `a JSON patch has at most ${MAX_JSON_PATCH_OPERATIONS} operations` });
  let doc = structuredClone(target);
  const copies = { bytes: 0 };
  for (const [index, op] of operations.entries()) {
    const applied = applyOperation(doc, op, copies);
    if (!applied.ok) return err({ operation: index, message: applied.error });
    doc = applied.value;
  }
  return ok(doc);
}

/** RFC 6901: `/a/b~1c/0` is ['a', 'b/c', '0']. */
function pointer(path: unknown): string[] | undefined {
  if (typeof path !== 'string' || (path !== '' && !path.startsWith('/'))) return undefined;
  return path === '' ? [] : path.slice(1).split('/').map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function getAt(doc: unknown, tokens: readonly string[]): { found: boolean; value: unknown } {
  let at: unknown = doc;
  for (const t of tokens) {
    if (Array.isArray(at) && /^(0|[1-9][0-9]*)$/.test(t) && Number(t) < at.length) at = at[Number(t)];
    else if (isObject(at) && Object.hasOwn(at, t)) at = at[t];
    else return { found: false, value: undefined };
  }
  return { found: true, value: at };
}

function arrayIndex(arr: readonly unknown[], token: string, forAdd: boolean): number | undefined {
  if (forAdd && token === '-') return arr.length;
  if (!/^(0|[1-9][0-9]*)$/.test(token)) return undefined;
  const i = Number(token);
  return i < arr.length || (forAdd && i === arr.length) ? i : undefined;
}

/** Where a pointer's last token lands: an array position or an object member. */
type Slot = { readonly array: unknown[]; readonly index: number } | { readonly object: JsonObject; readonly key: string };

function slotOf(doc: unknown, tokens: readonly string[], forAdd: boolean): Result<Slot, string> {
  const parent = getAt(doc, tokens.slice(0, -1));
  if (!parent.found || (!isObject(parent.value) && !Array.isArray(parent.value))) return err(`no such path /${tokens.slice(0, -1).join('/')}`);
  const last = tokens[tokens.length - 1] as string;
  if (!Array.isArray(parent.value)) {
    if (!forAdd && !Object.hasOwn(parent.value, last)) return err(`no such path /${tokens.join('/')}`);
    return ok({ object: parent.value, key: last });
  }
  const index = arrayIndex(parent.value, last, forAdd);
  return index === undefined ? err(`index ${last} is out of range`) : ok({ array: parent.value, index });
}

function add(doc: unknown, tokens: readonly string[], value: unknown): Result<unknown, string> {
  if (tokens.length === 0) return ok(value);
  const slot = slotOf(doc, tokens, true);
  if (!slot.ok) return slot;
  if ('array' in slot.value) slot.value.array.splice(slot.value.index, 0, value);
  else setOwn(slot.value.object, slot.value.key, value);
  return ok(doc);
}

function remove(doc: unknown, tokens: readonly string[]): Result<{ doc: unknown; removed: unknown }, string> {
  if (tokens.length === 0) return err('cannot remove the whole document');
  const slot = slotOf(doc, tokens, false);
  if (!slot.ok) return slot;
  if ('array' in slot.value) return ok({ doc, removed: slot.value.array.splice(slot.value.index, 1)[0] });
  const removed = slot.value.object[slot.value.key];
  delete slot.value.object[slot.value.key];
  return ok({ doc, removed });
}

function applyOperation(doc: unknown, op: unknown, copies: { bytes: number }): Result<unknown, string> {
  if (!isObject(op)) return err('an operation is an object');
  const path = pointer(op.path);
  if (path === undefined) return err('path is not a JSON pointer');
  switch (op.op) {
    case 'add':
      return 'value' in op ? add(doc, path, structuredClone(op.value)) : err('add needs a value');
    case 'remove': {
      const r = remove(doc, path);
      return r.ok ? ok(r.value.doc) : r;
    }
    case 'replace': {
      if (!('value' in op)) return err('replace needs a value');
      if (path.length === 0) return ok(structuredClone(op.value));
      // In place: a replaced member keeps its position (the diff then shows one changed line).
      const slot = slotOf(doc, path, false);
      if (!slot.ok) return slot;
      if ('array' in slot.value) slot.value.array[slot.value.index] = structuredClone(op.value);
      else setOwn(slot.value.object, slot.value.key, structuredClone(op.value));
      return ok(doc);
    }
    case 'move':
    case 'copy': {
      const from = pointer(op.from);
      if (from === undefined) return err('from is not a JSON pointer');
      const source = getAt(doc, from);
      if (!source.found) return err(`no such path ${String(op.from)}`);
      if (op.op === 'copy') {
        copies.bytes += JSON.stringify(source.value)?.length ?? 0;
        if (copies.bytes > MAX_JSON_PATCH_COPY_BYTES) return err(`copies over ${MAX_JSON_PATCH_COPY_BYTES} bytes in one patch`);
        return add(doc, path, structuredClone(source.value));
      }
      if (path.length > from.length && from.every((t, i) => path[i] === t)) return err('cannot move a value into itself');
      const r = remove(doc, from);
      return r.ok ? add(r.value.doc, path, r.value.removed) : r;
    }
    case 'test': {
      const at = getAt(doc, path);
      return at.found && sameJson(at.value, op.value) ? ok(doc) : err(`test failed at ${String(op.path)}`);
    }
    default:
      return err(`unknown operation ${JSON.stringify(op.op)}`);
  }
}

function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => sameJson(v, b[i]));
  if (!isObject(a) || !isObject(b)) return false;
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && sameJson(a[k], b[k]));
}
