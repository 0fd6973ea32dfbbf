import { clone, isObject, setField, type Json, type JsonObject } from './json';
import { badRequest, patchRejected } from './status';

/** RFC 7386 JSON merge patch: objects merge, `null` deletes, everything else replaces. */
export function mergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return clone(patch);
  const result: JsonObject = isObject(target) ? clone(target) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else setField(result, key, mergePatch(result[key] ?? null, value));
  }
  return result;
}

/**
 * The merge keys of the served kinds' associative lists (`patchMergeKey` in k8s.io/api), by field
 * name: strategic merge and server-side apply merge these lists item by item.
 */
export const MERGE_KEYS: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  ephemeralContainers: 'name',
  env: 'name',
  volumes: 'name',
  volumeMounts: 'mountPath',
  ports: 'containerPort',
  imagePullSecrets: 'name',
  conditions: 'type',
  tolerations: 'key',
};

/** Service ports are keyed by port number, container ports by containerPort; the parent decides. */
export function mergeKeyFor(field: string, item: JsonObject): string | undefined {
  if (field === 'ports' && 'port' in item && !('containerPort' in item)) return 'port';
  const key = MERGE_KEYS[field];
  return key ? key : undefined;
}

const DIRECTIVE_PREFIXES = ['$setElementOrder/', '$deleteFromPrimitiveList/', '$retainKeys'];


function mergeList(field: string, live: Json[], patch: Json[]): Json[] {
  const first = patch.find(isObject);
  const key = first ? mergeKeyFor(field, first) : undefined;
  if (!key) return patch.filter((p) => !(isObject(p) && p.$patch !== undefined)).map((p) => clone(p));
  const result = live.map((item) => clone(item));
  for (const item of patch) {
    if (!isObject(item)) continue;
    if (item.$patch === 'replace') return patch.filter((p) => !(isObject(p) && p.$patch === 'replace')).map((p) => clone(p));
    const index = result.findIndex((l) => isObject(l) && l[key] === item[key]);
    if (item.$patch === 'delete') {
      if (index >= 0) result.splice(index, 1);
    } else if (index >= 0) result[index] = strategicMerge(result[index] ?? null, item);
    else result.push(strategicMerge(null, item));
  }
  return result;
}

/**
 * Strategic merge patch for the served kinds: maps merge, `null` deletes, lists with a merge key
 * merge by key (with `$patch: delete|replace`), other lists replace. The ordering and retain-keys
 * directives kubectl adds are accepted and only affect order, which the fixture keeps as it was.
 */
export function strategicMerge(target: Json, patch: Json): Json {
  if (!isObject(patch)) return clone(patch);
  if (patch.$patch === 'replace') {
    const { $patch: _replace, ...rest } = patch;
    return clone(rest);
  }
  const result: JsonObject = isObject(target) ? clone(target) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (key === '$patch' || DIRECTIVE_PREFIXES.some((p) => key.startsWith(p))) continue;
    if (value === null) delete result[key];
    else if (Array.isArray(value)) setField(result, key, mergeList(key, Array.isArray(result[key]) ? result[key] : [], value));
    else setField(result, key, strategicMerge(result[key] ?? null, value));
  }
  return result;
}

const unescapePointer = (token: string): string => token.replace(/~1/g, '/').replace(/~0/g, '~');

function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw badRequest(`invalid JSON pointer: ${JSON.stringify(pointer)}`);
  return pointer.slice(1).split('/').map(unescapePointer);
}

function resolveParent(doc: Json, tokens: string[], op: string): { parent: JsonObject | Json[]; last: string } {
  let node = doc;
  for (const t of tokens.slice(0, -1)) {
    const next = Array.isArray(node) ? node[Number(t)] : isObject(node) ? node[t] : undefined;
    if (next === undefined) throw patchRejected(`${op} operation does not apply: doc is missing path: /${tokens.join('/')}: missing value`);
    node = next;
  }
  if (!Array.isArray(node) && !isObject(node)) throw patchRejected(`${op} operation does not apply: doc is missing path: /${tokens.join('/')}`);
  return { parent: node, last: tokens[tokens.length - 1] ?? '' };
}


function getAt(doc: Json, tokens: string[], op: string): Json {
  if (tokens.length === 0) return doc;
  const { parent, last } = resolveParent(doc, tokens, op);
  const value = Array.isArray(parent) ? parent[Number(last)] : parent[last];
  if (value === undefined) throw patchRejected(`${op} operation does not apply: doc is missing path: /${tokens.join('/')}`);
  return value;
}

function removeAt(doc: Json, tokens: string[], op: string): Json {
  const value = getAt(doc, tokens, op);
  const { parent, last } = resolveParent(doc, tokens, op);
  if (Array.isArray(parent)) parent.splice(Number(last), 1);
  else delete parent[last];
  return value;
}

function addAt(doc: Json, tokens: string[], value: Json, op: string): Json {
  if (tokens.length === 0) return value;
  const { parent, last } = resolveParent(doc, tokens, op);
  if (Array.isArray(parent)) {
    const index = last === '-' ? parent.length : Number(last);
    if (!Number.isInteger(index) || index < 0 || index > parent.length) throw patchRejected(`${op} operation does not apply: index out of bounds: ${last}`);
    parent.splice(index, 0, value);
  } else setField(parent, last, value);
  return doc;
}

/** RFC 6902 JSON patch (add, remove, replace, move, copy, test). */
export function jsonPatch(target: Json, operations: Json): Json {
  if (!Array.isArray(operations)) throw badRequest('json: cannot unmarshal object into Go value of type jsonpatch.Patch');
  let doc = clone(target);
  for (const operation of operations) {
    if (!isObject(operation) || typeof operation.op !== 'string' || typeof operation.path !== 'string') throw badRequest('invalid JSON patch operation');
    const { op } = operation;
    const path = parsePointer(operation.path);
    const from = typeof operation.from === 'string' ? parsePointer(operation.from) : undefined;
    switch (op) {
      case 'add':
        doc = addAt(doc, path, clone(operation.value ?? null), op);
        break;
      case 'remove':
        removeAt(doc, path, op);
        break;
      case 'replace':
        getAt(doc, path, op);
        if (path.length === 0) doc = clone(operation.value ?? null);
        else {
          removeAt(doc, path, op);
          doc = addAt(doc, path, clone(operation.value ?? null), op);
        }
        break;
      case 'move':
      case 'copy': {
        if (!from) throw badRequest(`${op} operation needs "from"`);
        const value = op === 'move' ? removeAt(doc, from, op) : clone(getAt(doc, from, op));
        doc = addAt(doc, path, value, op);
        break;
      }
      case 'test':
        if (JSON.stringify(getAt(doc, path, op)) !== JSON.stringify(operation.value ?? null)) throw patchRejected(`testing value /${path.join('/')} failed: test failed`);
        break;
      default:
        throw badRequest(`Unexpected kind: ${op}`);
    }
  }
  return doc;
}
