import { createHash } from 'node:crypto';
import { VERSION_INFO } from './discovery';
import type { JsonObject } from './json';
import { apiVersionOf, isStored, KINDS, type ResourceKind } from './kinds';
import { DEFINITIONS, META, type Definition, type Prop } from './openapi-schemas';
import { encodeOpenApiV2 } from './openapi-v2-protobuf';

type Dialect = 'v2' | 'v3';

const refTo = (dialect: Dialect, name: string): string => (dialect === 'v2' ? `#/definitions/${name}` : `#/components/schemas/${name}`);

function renderProp(dialect: Dialect, p: Prop): JsonObject {
  const description: JsonObject = p.description ? { description: p.description } : {};
  switch (p.type) {
    case 'map':
      return { ...description, type: 'object', additionalProperties: { type: 'string', ...(dialect === 'v3' ? { default: '' } : {}) } };
    case 'int-or-string':
      return { ...description, type: 'string', format: 'int-or-string' };
    case 'ref':
      return dialect === 'v2' ? { ...description, $ref: refTo(dialect, p.ref) } : { ...description, default: {}, allOf: [{ $ref: refTo(dialect, p.ref) }] };
    case 'array':
      return {
        ...description,
        type: 'array',
        items: renderProp(dialect, p.items),
        ...(p.mergeKey ? { 'x-kubernetes-patch-merge-key': p.mergeKey, 'x-kubernetes-patch-strategy': 'merge' } : {}),
        ...(p.listMapKeys ? { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': p.listMapKeys } : {}),
      };
    default:
      return { ...description, type: p.type, ...(p.format ? { format: p.format } : {}) };
  }
}

function renderDefinition(dialect: Dialect, d: Definition): JsonObject {
  return {
    description: d.description,
    type: 'object',
    ...(d.required ? { required: d.required } : {}),
    properties: Object.fromEntries(Object.entries(d.properties).map(([k, p]) => [k, renderProp(dialect, p)])),
    ...(d.gvk ? { 'x-kubernetes-group-version-kind': [d.gvk] } : {}),
  };
}

function refsOf(p: Prop): string[] {
  if (p.type === 'ref') return [p.ref];
  if (p.type === 'array') return refsOf(p.items);
  return [];
}

/** The definitions reachable from `roots`, as a real per-group-version document carries them. */
function closure(roots: string[]): string[] {
  const seen = new Set<string>();
  const visit = (name: string): void => {
    const d = DEFINITIONS[name];
    if (!d || seen.has(name)) return;
    seen.add(name);
    for (const p of Object.values(d.properties)) refsOf(p).forEach(visit);
  };
  roots.forEach(visit);
  return [...seen].sort();
}

/** The Go package of a group (`core`, `apps`, `authorization`): schema names and operation ids use it. */
const packageOf = (group: string): string => (group === '' ? 'core' : (group.split('.')[0] ?? group));
const schemaName = (k: { group: string; kind: string }): string => `io.k8s.api.${packageOf(k.group)}.v1.${k.kind}`;

const QUERY = {
  dryRun: 'When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed',
  fieldManager: 'fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.',
  fieldValidation: 'fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore - Warn - Strict',
  force: 'Force is going to "force" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.',
  labelSelector: 'A selector to restrict the list of returned objects by their labels. Defaults to everything.',
  fieldSelector: 'A selector to restrict the list of returned objects by their fields. Defaults to everything.',
  limit: 'limit is a maximum number of responses to return for a list call.',
  continue: 'The continue option should be set when retrieving more results from the server.',
  resourceVersion: 'resourceVersion sets a constraint on what resource versions a request may be served from.',
  watch: 'Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.',
  allowWatchBookmarks: 'allowWatchBookmarks requests watch events with type "BOOKMARK".',
  timeoutSeconds: 'Timeout for the list/watch call.',
} as const;

type QueryName = keyof typeof QUERY;
const BOOLEAN_QUERY = new Set<QueryName>(['force', 'watch', 'allowWatchBookmarks']);

function parameter(dialect: Dialect, name: QueryName): JsonObject {
  const type = BOOLEAN_QUERY.has(name) ? 'boolean' : name === 'limit' || name === 'timeoutSeconds' ? 'integer' : 'string';
  return dialect === 'v2' ? { uniqueItems: true, type, description: QUERY[name], name, in: 'query' } : { name, in: 'query', description: QUERY[name], schema: { type, uniqueItems: true } };
}

const PATCH_TYPES = ['application/json-patch+json', 'application/merge-patch+json', 'application/strategic-merge-patch+json', 'application/apply-patch+yaml'];
const PRODUCES = ['application/json', 'application/yaml', 'application/vnd.kubernetes.protobuf'];

interface Operation {
  action: string;
  verb: string;
  kind: { group: string; version: string; kind: string };
  body?: string;
  response: string;
  query: QueryName[];
  consumes?: string[];
}

function renderOperation(dialect: Dialect, id: string, op: Operation): JsonObject {
  const response: JsonObject = dialect === 'v2' ? { description: 'OK', schema: { $ref: refTo(dialect, op.response) } } : { description: 'OK', content: Object.fromEntries(PRODUCES.map((t) => [t, { schema: { $ref: refTo(dialect, op.response) } }])) };
  const consumes = op.consumes ?? ['*/*'];
  const body: JsonObject = op.body
    ? dialect === 'v2'
      ? { parameters: [{ name: 'body', in: 'body', required: true, schema: { $ref: refTo(dialect, op.body) } }, ...op.query.map((q) => parameter(dialect, q))], consumes }
      : { parameters: op.query.map((q) => parameter(dialect, q)), requestBody: { content: Object.fromEntries(consumes.map((t) => [t, { schema: { $ref: refTo(dialect, op.body ?? '') } }])), required: true } }
    : { parameters: op.query.map((q) => parameter(dialect, q)) };
  return {
    tags: [`${packageOf(op.kind.group)}_v1`],
    description: `${op.verb} ${op.kind.kind}`,
    operationId: id,
    ...body,
    ...(dialect === 'v2' ? { produces: PRODUCES, schemes: ['https'] } : {}),
    responses: { '200': response, '401': { description: 'Unauthorized' } },
    'x-kubernetes-action': op.action,
    'x-kubernetes-group-version-kind': op.kind,
  };
}

const WRITE_QUERY: QueryName[] = ['dryRun', 'fieldManager', 'fieldValidation'];
const LIST_QUERY: QueryName[] = ['allowWatchBookmarks', 'continue', 'fieldSelector', 'labelSelector', 'limit', 'resourceVersion', 'timeoutSeconds', 'watch'];

function pathParameters(dialect: Dialect, names: string[]): JsonObject[] {
  return names.map((name): JsonObject => (dialect === 'v2' ? { uniqueItems: true, type: 'string', description: `${name} of the resource`, name, in: 'path', required: true } : { name, in: 'path', description: `${name} of the resource`, required: true, schema: { type: 'string', uniqueItems: true } }));
}

function pathsFor(dialect: Dialect, k: ResourceKind): Record<string, JsonObject> {
  const base = k.group ? `/apis/${k.group}/v1` : '/api/v1';
  const collection = k.namespaced ? `${base}/namespaces/{namespace}/${k.resource}` : `${base}/${k.resource}`;
  const gvk = { group: k.group, version: k.version, kind: k.kind };
  const type = schemaName(k);
  const pkg = packageOf(k.group);
  const idKind = `${pkg.charAt(0).toUpperCase() + pkg.slice(1)}V1${k.namespaced ? 'Namespaced' : ''}${k.kind}`;
  const scope = k.namespaced ? ['namespace'] : [];
  if (!isStored(k)) return { [collection]: { post: renderOperation(dialect, `create${idKind}`, { action: 'post', verb: 'create a', kind: gvk, body: type, response: type, query: WRITE_QUERY }) } };
  const paths: Record<string, JsonObject> = {
    [collection]: {
      get: renderOperation(dialect, `list${idKind}`, { action: 'list', verb: 'list or watch objects of kind', kind: gvk, response: `${type}List`, query: LIST_QUERY }),
      post: renderOperation(dialect, `create${idKind}`, { action: 'post', verb: 'create a', kind: gvk, body: type, response: type, query: WRITE_QUERY }),
      ...(k.resource === 'namespaces' ? {} : { delete: renderOperation(dialect, `deletecollection${idKind}`, { action: 'deletecollection', verb: 'delete collection of', kind: gvk, response: `${META}.Status`, query: ['dryRun', 'labelSelector', 'fieldSelector'] }) }),
      parameters: pathParameters(dialect, scope),
    },
    [`${collection}/{name}`]: {
      get: renderOperation(dialect, `read${idKind}`, { action: 'get', verb: 'read the specified', kind: gvk, response: type, query: [] }),
      put: renderOperation(dialect, `replace${idKind}`, { action: 'put', verb: 'replace the specified', kind: gvk, body: type, response: type, query: WRITE_QUERY }),
      patch: renderOperation(dialect, `patch${idKind}`, { action: 'patch', verb: 'partially update the specified', kind: gvk, body: `${META}.Patch`, response: type, query: [...WRITE_QUERY, 'force'], consumes: PATCH_TYPES }),
      delete: renderOperation(dialect, `delete${idKind}`, { action: 'delete', verb: 'delete a', kind: gvk, body: `${META}.DeleteOptions`, response: `${META}.Status`, query: ['dryRun'] }),
      parameters: pathParameters(dialect, [...scope, 'name']),
    },
  };
  if (k.namespaced) paths[`${base}/${k.resource}`] = { get: renderOperation(dialect, `list${idKind.replace('Namespaced', '')}ForAllNamespaces`, { action: 'list', verb: 'list or watch objects of kind', kind: gvk, response: `${type}List`, query: LIST_QUERY }) };
  for (const s of k.subresources.filter((s) => s.name === 'scale' || s.name === 'status')) {
    const sgvk = { group: s.group, version: s.version, kind: s.kind };
    const stype = schemaName(sgvk);
    const suffix = s.name.charAt(0).toUpperCase() + s.name.slice(1);
    paths[`${collection}/{name}/${s.name}`] = {
      get: renderOperation(dialect, `read${idKind}${suffix}`, { action: 'get', verb: `read ${s.name} of the specified`, kind: sgvk, response: stype, query: [] }),
      put: renderOperation(dialect, `replace${idKind}${suffix}`, { action: 'put', verb: `replace ${s.name} of the specified`, kind: sgvk, body: stype, response: stype, query: WRITE_QUERY }),
      patch: renderOperation(dialect, `patch${idKind}${suffix}`, { action: 'patch', verb: `partially update ${s.name} of the specified`, kind: sgvk, body: `${META}.Patch`, response: stype, query: [...WRITE_QUERY, 'force'], consumes: PATCH_TYPES }),
      parameters: pathParameters(dialect, [...scope, 'name']),
    };
  }
  return paths;
}

const INFO = { title: 'Kubernetes', version: VERSION_INFO.gitVersion };

function rootsOf(kinds: readonly ResourceKind[]): string[] {
  const roots = kinds.flatMap((k) => [schemaName(k), ...(isStored(k) ? [`${schemaName(k)}List`] : []), ...k.subresources.filter((s) => s.name === 'scale').map((s) => schemaName(s))]);
  return [...roots, `${META}.Status`, `${META}.Patch`, `${META}.DeleteOptions`];
}

/** `/openapi/v2`: one Swagger 2.0 document for everything served. */
export function openApiV2(): JsonObject {
  const paths = Object.assign({}, ...KINDS.map((k) => pathsFor('v2', k))) as JsonObject;
  const definitions = Object.fromEntries(closure(rootsOf(KINDS)).map((n) => [n, renderDefinition('v2', DEFINITIONS[n] as Definition)]));
  return { swagger: '2.0', info: INFO, paths, definitions, securityDefinitions: { BearerToken: { description: 'Bearer Token authentication', type: 'apiKey', name: 'authorization', in: 'header' } }, security: [{ BearerToken: [] }] };
}

let v2Protobuf: Buffer | undefined;

/** `/openapi/v2` as gnostic protobuf (built once: the document does not change). */
export function openApiV2Protobuf(): Buffer {
  v2Protobuf ??= encodeOpenApiV2(openApiV2());
  return v2Protobuf;
}

/** `/openapi/v3/{api/v1|apis/apps/v1}`: the OpenAPI 3.0 document of one group version. */
export function openApiV3(groupVersion: string): JsonObject | undefined {
  const kinds = KINDS.filter((k) => (k.group ? `apis/${apiVersionOf(k)}` : `api/${k.version}`) === groupVersion);
  if (kinds.length === 0) return undefined;
  const paths = Object.assign({}, ...kinds.map((k) => pathsFor('v3', k))) as JsonObject;
  const schemas = Object.fromEntries(closure(rootsOf(kinds)).map((n) => [n, renderDefinition('v3', DEFINITIONS[n] as Definition)]));
  return { openapi: '3.0.0', info: INFO, paths, components: { schemas, securitySchemes: { BearerToken: { type: 'apiKey', description: 'Bearer Token authentication', name: 'authorization', in: 'header' } } } };
}

export const V3_GROUP_VERSIONS = ['api/v1', 'apis/apps/v1', 'apis/authorization.k8s.io/v1'];

/** A content hash as the real index carries it, so clients can cache documents by URL. */
export const documentHash = (body: string): string => createHash('sha512').update(body).digest('hex').toUpperCase();

/** `/openapi/v3`: where each group version's document lives. */
export function openApiV3Index(hashes: Record<string, string>): JsonObject {
  return { paths: Object.fromEntries(V3_GROUP_VERSIONS.map((gv) => [gv, { serverRelativeURL: `/openapi/v3/${gv}?hash=${hashes[gv] ?? ''}` }])) };
}
