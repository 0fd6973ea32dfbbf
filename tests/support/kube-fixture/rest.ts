import { parse as parseYaml } from 'yaml';
import { PROTOBUF_TYPE } from './negotiation';
import { decodeProtobuf } from './protobuf';
import { admit, generateName, timestamp, validate, type AdmitContext } from './admission';
import { clone, ensure, field, isObject, metadataOf, nameOf, namespaceOf, text, type Json, type JsonObject } from './json';
import { apiVersionOf, findKind, KINDS, type ResourceKind } from './kinds';
import { recordUpdate, serverSideApply } from './managed-fields';
import { jsonPatch, mergePatch, strategicMerge } from './patch';
import type { RequestInfo } from './request-info';
import { matchesLabels, parseFieldSelector, parseLabelSelector } from './selectors';
import { alreadyExists, badRequest, conflict, entityTooLarge, gone, invalid, methodNotAllowed, notFound, STALE_OBJECT, unsupportedMediaType } from './status';
import type { ObjectStore } from './store';

/** The apiserver's request body limit (3 MiB). */
export const MAX_BODY_BYTES = 3 * 1024 * 1024;
const BODY_TYPES = ['application/json', 'application/yaml', 'application/vnd.kubernetes.protobuf'];
const PATCH_TYPES = ['application/json-patch+json', 'application/merge-patch+json', 'application/strategic-merge-patch+json', 'application/apply-patch+yaml'];

export interface ResourceRequest {
  info: RequestInfo & { kind: ResourceKind };
  query: URLSearchParams;
  contentType: string;
  body: Buffer;
  userAgent: string;
}

/** What a handler answers: an object or a list of `kind` (rendered as the client asked), or a Status. */
export interface ResourceResult {
  status: number;
  value: JsonObject;
  list?: boolean;
}

export interface RestContext extends AdmitContext {
  store: ObjectStore;
  /** Called when an object leaves the store (pods' logs and streams end with them). */
  onRemoved(k: ResourceKind, object: JsonObject): void;
}

const NAMESPACES = findKind('', 'v1', 'namespaces') as ResourceKind;

/** Reads a request body as a real server decodes it: JSON, YAML, or protobuf for the kinds typed clients send. */
export function decodeBody(body: Buffer, contentType: string): Json {
  if (body.length > MAX_BODY_BYTES) throw entityTooLarge();
  const type = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
  if (type === PROTOBUF_TYPE) return decodeProtobuf(body);
  const textBody = body.toString('utf8');
  try {
    if (type === 'application/json' || type === 'application/json-patch+json' || type === 'application/merge-patch+json' || type === 'application/strategic-merge-patch+json') return JSON.parse(textBody) as Json;
    if (type === 'application/yaml' || type === 'application/apply-patch+yaml') return (parseYaml(textBody) ?? null) as Json;
  } catch (e) {
    throw badRequest(`error decoding body: ${(e as Error).message.split('\n')[0] ?? ''}`);
  }
  throw unsupportedMediaType(type, BODY_TYPES);
}

/** The object with its kind and apiVersion first, as the server's encoder writes them. */
export function withType(k: ResourceKind, object: JsonObject): JsonObject {
  const { kind: _kind, apiVersion: _apiVersion, ...rest } = object;
  return { kind: k.kind, apiVersion: apiVersionOf(k), ...rest };
}

function bodyObject(req: ResourceRequest): JsonObject {
  const body = decodeBody(req.body, req.contentType);
  if (!isObject(body)) throw badRequest('the body of the request must be a JSON object');
  return body;
}

function checkIdentity(req: ResourceRequest, object: JsonObject): void {
  const k = req.info.kind;
  const apiVersion = text(object.apiVersion);
  const kind = text(object.kind);
  if (apiVersion && apiVersion !== apiVersionOf(k)) throw badRequest(`the API version in the data (${apiVersion}) does not match the expected API version (${apiVersionOf(k)})`);
  if (kind && kind !== k.kind) throw badRequest(`${kind} in version "${k.version}" cannot be handled as a ${k.kind}: the object kind does not match the resource`);
  const metadata = ensure(object, 'metadata');
  if (k.namespaced) {
    const ns = text(metadata.namespace);
    if (ns && ns !== req.info.namespace) throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    metadata.namespace = req.info.namespace ?? '';
  }
}

const dryRun = (req: ResourceRequest): boolean => req.query.getAll('dryRun').includes('All');
/** A delete's options are its body's when it has one (the query is then ignored, as kube-apiserver does), else the query's. */
function deleteOptions(req: ResourceRequest): { options: JsonObject; dryRun: boolean } {
  if (!req.body.length) return { options: {}, dryRun: dryRun(req) };
  const body = decodeBody(req.body, req.contentType || 'application/json');
  const options = isObject(body) ? body : {};
  return { options, dryRun: Array.isArray(options.dryRun) && options.dryRun.includes('All') };
}
const managerOf = (req: ResourceRequest): string => req.query.get('fieldManager') || req.userAgent.split('/')[0] || 'unknown';

function requireNamespace(ctx: RestContext, req: ResourceRequest): void {
  const ns = req.info.namespace;
  if (req.info.kind.namespaced && ns !== undefined && !ctx.store.get(NAMESPACES, '', ns)) throw notFound('namespaces', '', ns);
}

function check(k: ResourceKind, object: JsonObject): void {
  const problems = validate(k, object);
  if (problems.length) throw invalid(k.kind, k.group, nameOf(object), problems);
}

/** Admits, validates and stores (unless a dry run) a new or changed object, recording field ownership. */
function persist(ctx: RestContext, req: ResourceRequest, object: JsonObject, existing: JsonObject | undefined, applied: boolean): JsonObject {
  const k = req.info.kind;
  check(k, object);
  const admitted = admit(k, withType(k, object), existing, ctx);
  if (!applied) recordUpdate(existing, admitted, managerOf(req), apiVersionOf(k), timestamp(ctx.now), req.info.subresource);
  if (dryRun(req)) return admitted;
  return withType(k, ctx.store.write(k, admitted, existing ? 'MODIFIED' : 'ADDED'));
}

function live(ctx: RestContext, req: ResourceRequest): JsonObject {
  const k = req.info.kind;
  const found = ctx.store.get(k, req.info.namespace ?? '', req.info.name ?? '');
  if (!found) throw notFound(k.resource, k.group, req.info.name ?? '');
  return withType(k, found);
}

function checkResourceVersion(req: ResourceRequest, current: JsonObject, proposed: JsonObject): void {
  const wanted = text(metadataOf(proposed).resourceVersion);
  if (wanted && wanted !== text(metadataOf(current).resourceVersion)) throw conflict(req.info.kind.resource, req.info.kind.group, req.info.name ?? '', STALE_OBJECT);
}

export function create(ctx: RestContext, req: ResourceRequest): ResourceResult {
  const k = req.info.kind;
  const object = bodyObject(req);
  checkIdentity(req, object);
  generateName(object);
  requireNamespace(ctx, req);
  const metadata = metadataOf(object);
  delete metadata.resourceVersion;
  delete metadata.uid;
  delete metadata.creationTimestamp;
  delete metadata.managedFields;
  if (ctx.store.get(k, namespaceOf(object), nameOf(object))) {
    check(k, object);
    throw alreadyExists(k.resource, k.group, nameOf(object));
  }
  return { status: 201, value: persist(ctx, req, object, undefined, false) };
}

export function update(ctx: RestContext, req: ResourceRequest): ResourceResult {
  const object = bodyObject(req);
  checkIdentity(req, object);
  if (nameOf(object) !== req.info.name) throw badRequest(`the name of the object (${nameOf(object)}) does not match the name on the URL (${req.info.name ?? ''})`);
  const current = live(ctx, req);
  checkResourceVersion(req, current, object);
  if (req.info.subresource === 'status') object.spec = current.spec ?? null;
  else if (current.status !== undefined) object.status = current.status;
  return { status: 200, value: persist(ctx, req, object, current, false) };
}

function applyPatch(req: ResourceRequest, current: JsonObject, patch: Json): JsonObject {
  const type = req.contentType.split(';')[0]?.trim().toLowerCase() ?? '';
  const patched = type === 'application/json-patch+json' ? jsonPatch(current, patch) : type === 'application/merge-patch+json' ? mergePatch(current, patch) : strategicMerge(current, patch);
  if (!isObject(patched)) throw badRequest('the patch did not produce an object');
  return patched;
}

export function patch(ctx: RestContext, req: ResourceRequest): ResourceResult {
  const k = req.info.kind;
  const type = req.contentType.split(';')[0]?.trim().toLowerCase() ?? '';
  if (!PATCH_TYPES.includes(type)) throw unsupportedMediaType(type, PATCH_TYPES);
  const body = decodeBody(req.body, type);
  if (type === 'application/apply-patch+yaml') return apply(ctx, req, body);
  if (req.query.get('force')) throw badRequest('force: Invalid value: true: may not be specified for non-apply patch');
  const current = live(ctx, req);
  if (isObject(body)) checkResourceVersion(req, current, body);
  const patched = applyPatch(req, clone(current), body);
  if (nameOf(patched) !== req.info.name) throw invalid(k.kind, k.group, req.info.name ?? '', [{ field: 'metadata.name', type: 'FieldValueInvalid', detail: `${JSON.stringify(nameOf(patched))}: field is immutable` }]);
  checkIdentity(req, patched);
  return { status: 200, value: persist(ctx, req, patched, current, false) };
}

function apply(ctx: RestContext, req: ResourceRequest, body: Json): ResourceResult {
  const k = req.info.kind;
  const manager = req.query.get('fieldManager');
  if (!manager) throw invalid('PatchOptions', 'meta.k8s.io', '', [{ field: 'fieldManager', type: 'FieldValueRequired', detail: 'is required for apply patch' }]);
  if (!isObject(body)) throw badRequest('the apply configuration must be an object');
  checkIdentity(req, body);
  if (!text(body.apiVersion) || !text(body.kind)) throw badRequest('invalid object type: /, Kind=');
  if (nameOf(body) !== req.info.name) throw badRequest(`the name of the object (${nameOf(body)}) does not match the name on the URL (${req.info.name ?? ''})`);
  requireNamespace(ctx, req);
  const current = ctx.store.get(k, req.info.namespace ?? '', req.info.name ?? '');
  const force = req.query.get('force') === 'true';
  const merged = serverSideApply(current ? withType(k, current) : undefined, body, manager, apiVersionOf(k), force, timestamp(ctx.now), req.info.subresource);
  return { status: current ? 200 : 201, value: persist(ctx, req, merged, current, true) };
}

export function get(ctx: RestContext, req: ResourceRequest): ResourceResult {
  return { status: 200, value: live(ctx, req) };
}

interface ContinueToken {
  rv: number;
  after: string;
}

const sortKey = (o: JsonObject): string => `${namespaceOf(o)}/${nameOf(o)}`;

/** The objects a list or watch selects (namespace, label selector, field selector). */
export function selection(req: ResourceRequest): (o: JsonObject) => boolean {
  const labels = parseLabelSelector(req.query.get('labelSelector'));
  const fields = parseFieldSelector(req.info.kind, req.query.get('fieldSelector'));
  return (o) => (req.info.namespace === undefined || namespaceOf(o) === req.info.namespace) && matchesLabels(labels, o) && fields(o);
}

export function list(ctx: RestContext, req: ResourceRequest): ResourceResult {
  const k = req.info.kind;
  const selected = selection(req);
  let items = ctx.store.list(k, req.info.namespace).filter(selected);
  let resourceVersion = ctx.store.resourceVersion;
  const token = req.query.get('continue');
  if (token) {
    let parsed: ContinueToken;
    try {
      parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as ContinueToken;
    } catch {
      throw badRequest('continue key is not valid: illegal base64 data');
    }
    if (parsed.rv < ctx.store.oldestResumable) throw gone('The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.');
    resourceVersion = parsed.rv;
    items = items.filter((o) => sortKey(o) > parsed.after);
  }
  const limit = Number(req.query.get('limit') ?? 0);
  const metadata: JsonObject = { resourceVersion: String(resourceVersion) };
  if (limit > 0 && items.length > limit) {
    const last = items[limit - 1] as JsonObject;
    metadata.continue = Buffer.from(JSON.stringify({ rv: resourceVersion, after: sortKey(last) })).toString('base64url');
    metadata.remainingItemCount = items.length - limit;
    items = items.slice(0, limit);
  }
  return { status: 200, value: { kind: `${k.kind}List`, apiVersion: apiVersionOf(k), metadata, items }, list: true };
}

function deletionAnswer(k: ResourceKind, gone: JsonObject): JsonObject {
  if (k.resource === 'pods' || k.resource === 'namespaces') return withType(k, gone);
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name: nameOf(gone), ...(k.group ? { group: k.group } : {}), kind: k.resource, uid: text(metadataOf(gone).uid) ?? '' } };
}

function removeObject(ctx: RestContext, k: ResourceKind, object: JsonObject): JsonObject {
  const gone = ctx.store.remove(k, namespaceOf(object), nameOf(object)) ?? object;
  ctx.onRemoved(k, gone);
  const metadata = ensure(gone, 'metadata');
  if (k.resource === 'pods') {
    metadata.deletionTimestamp = timestamp(ctx.now);
    metadata.deletionGracePeriodSeconds = 0;
  }
  if (k.resource === 'namespaces') ensure(gone, 'status').phase = 'Terminating';
  return gone;
}

export function remove(ctx: RestContext, req: ResourceRequest): ResourceResult {
  const k = req.info.kind;
  const current = live(ctx, req);
  const { options, dryRun: dry } = deleteOptions(req);
  const preconditions = field(options, 'preconditions');
  const uid = text(metadataOf(current).uid);
  if (text(preconditions.uid) && preconditions.uid !== uid) throw conflict(k.resource, k.group, req.info.name ?? '', `Precondition failed: UID in precondition: ${String(preconditions.uid)}, UID in object meta: ${uid ?? ''}`);
  if (text(preconditions.resourceVersion) && preconditions.resourceVersion !== metadataOf(current).resourceVersion) throw conflict(k.resource, k.group, req.info.name ?? '', `Precondition failed: ResourceVersion in precondition: ${String(preconditions.resourceVersion)}, ResourceVersion in object meta: ${String(metadataOf(current).resourceVersion)}`);
  if (dry) return { status: 200, value: deletionAnswer(k, current) };
  if (k.resource === 'namespaces') emptyNamespace(ctx, nameOf(current));
  return { status: 200, value: deletionAnswer(k, removeObject(ctx, k, current)) };
}

export function removeCollection(ctx: RestContext, req: ResourceRequest): ResourceResult {
  const k = req.info.kind;
  if (k.resource === 'namespaces') throw methodNotAllowed();
  const selected = selection(req);
  const doomed = ctx.store.list(k, req.info.namespace).filter(selected);
  const items = deleteOptions(req).dryRun ? doomed : doomed.map((o) => removeObject(ctx, k, o));
  return { status: 200, value: { kind: `${k.kind}List`, apiVersion: apiVersionOf(k), metadata: { resourceVersion: String(ctx.store.resourceVersion) }, items }, list: true };
}

/** Deletes everything in a namespace being deleted (the namespace controller, done at once). */
function emptyNamespace(ctx: RestContext, namespace: string): void {
  for (const k of KINDS.filter((kind) => kind.namespaced)) for (const o of ctx.store.list(k, namespace)) removeObject(ctx, k, o);
}
