import { parseDocument, stringify } from 'yaml';
import { unifiedLineDiff } from '../line-diff';
import { maskJson } from '../masking/json';
import { err, ok, type Result } from '../result';
import { maskKubeObject, SECRET_DATA_MASK, SECRET_STRING_MASK, type KubeMasking } from './object-masking';
import { decodeProtobufObject, PROTOBUF_MEDIA_TYPE } from './protobuf-object';
import { applyJsonPatch, mergePatch, strategicMerge } from './patch';
import type { ResourceRequestInfo } from './request-info';

/**
 * What a reviewer sees of a held write: the request in one line, its body (the patch itself for a
 * patch), and a diff from the live object (read with the read credential) to the object the request
 * would leave, both masked as a caller would see them. Secret values are never shown, yet a change to
 * one is: a changed value reads `**** (changed)`, and a value that is the mask itself (a manifest
 * saved from a masked `kubectl get` and applied back) is called out, since applying it would store
 * `****` as the secret. Also returns the body the agent sends on approval: the one it decoded and
 * showed, encoded again, never the caller's bytes.
 */

/** Deepest nesting of objects and lists in a body (manifests nest a few dozen levels); the review's steps recurse, so deeper would exhaust the stack. */
export const MAX_BODY_NESTING = 512;
/** kube-apiserver's own limit on a request body. */
export const MAX_REVIEW_BODY_BYTES = 3 * 1024 * 1024;

const PATCH_TYPES = {
  'application/json-patch+json': 'JSON patch',
  'application/merge-patch+json': 'merge patch',
  'application/strategic-merge-patch+json': 'strategic merge patch',
  'application/apply-patch+yaml': 'server-side apply',
} as const;
type PatchContentType = keyof typeof PATCH_TYPES;
const OBJECT_TYPES = new Set(['application/json', 'application/yaml', PROTOBUF_MEDIA_TYPE]);
/** Bodies sent on as JSON: YAML, and protobuf (read for a few kinds), are shown and sent as the JSON the agent decoded. */
const SENT_AS_JSON = new Set(['application/yaml', PROTOBUF_MEDIA_TYPE]);
const WRITE_VERBS = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);

export const CHANGED_MARK = ' (changed)';
export const PLACEHOLDER_MARK = ' (the mask itself, approving stores it as the value)';

export interface WriteReview {
  /** One line: verb, resource, namespace/name, patch type, dry run. */
  readonly title: string;
  /** The request body as the reviewer sees it (masked YAML; a JSON patch as its operations); '' without one. */
  readonly body: string;
  /** A unified diff from the live object to the one after the request (masked); '' when nothing differs or it cannot be computed. */
  readonly diff: string;
  readonly notes: readonly string[];
  /** What the agent sends upstream on approval; undefined when the request has no body. */
  readonly forward: { readonly contentType: string; readonly body: string } | undefined;
}

export interface WriteRequest {
  readonly info: ResourceRequestInfo;
  readonly contentType: string | undefined;
  readonly body: Buffer;
  /** The live object (or subresource) read with the read credential; undefined when there is none (a create, a 404). */
  readonly live: unknown;
}

export type ReviewRefusal = { readonly code: 'too-large' | 'unreviewable' | 'malformed'; readonly message: string };

const refuse = (code: ReviewRefusal['code'], message: string): { ok: false; error: ReviewRefusal } => err({ code, message: `twokey: ${message}` });

type JsonObject = Record<string, unknown>;
const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `masking`: the caller's (`kubeMaskingFor`); the reviewer sees what the requester would. */
export function reviewWrite(req: WriteRequest, masking: KubeMasking): Result<WriteReview, ReviewRefusal> {
  const { info } = req;
  // A create makes a new object: whatever was read before is not what it changes.
  const live = info.verb === 'create' ? undefined : req.live;
  if (!WRITE_VERBS.has(info.verb)) return refuse('unreviewable', `a ${info.verb || info.method} request is not a write the agent can show`);
  if (req.body.length > MAX_REVIEW_BODY_BYTES) return refuse('too-large', `request body over ${MAX_REVIEW_BODY_BYTES} bytes`);
  const mediaType = (req.contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  const decoded = decodeBody(info, mediaType, req.body);
  if (!decoded.ok) return decoded;
  const body = decoded.value;
  // `?propagationPolicy=Orphan` beside a body would read as dependents kept, and be a cascading delete.
  const ignored = isDelete(info) && body !== undefined ? DELETE_OPTION_PARAMETERS.filter((p) => info.query.has(p)) : [];
  if (ignored.length) return refuse('malformed', `a delete with a body takes its options from the body and the API server ignores the query's ${ignored.join(', ')}: send them in the body`);
  const notes: string[] = [];
  const computed = objectAfter(info, live, mediaType, body, notes);
  if (!computed.ok) return computed;

  const kind = kindOf(live) ?? kindOf(body) ?? kindOf(computed.value?.after);
  const asSecret = masking.secrets || kind === 'Secret';
  const m: KubeMasking = { profile: masking.profile, secrets: asSecret };
  const ref = `${info.namespace !== undefined ? `${info.namespace}/` : ''}${info.name ?? nameOf(body) ?? '(unnamed)'}`;
  let diff = '';
  if (computed.value !== undefined && info.verb !== 'deletecollection') {
    const after = asSecret ? foldStringData(computed.value.after) : computed.value.after;
    const afterMasked = after === undefined ? undefined : maskKubeObject(after, m, kind);
    const shown = asSecret ? markSecretChanges(live, after, afterMasked, notes) : afterMasked;
    const before = live === undefined ? undefined : maskKubeObject(live, m, kind);
    const labels = { before: live === undefined ? '(no live object)' : `live ${ref}`, after: after === undefined ? '(deleted)' : `after this ${info.verb}` };
    diff = unifiedLineDiff(render(before, notes), render(shown, notes), labels).text;
  }
  if (info.verb === 'delete' && live === undefined) notes.push('the object to delete could not be read with the read token (absent, unreadable, or too large): only its name is shown');
  if (info.verb === 'delete' && info.group === '' && info.resource === 'namespaces' && info.subresource === undefined) notes.push('deleting a namespace deletes every object in it');
  if (info.verb === 'deletecollection') notes.push('deletes every object the request selects (no diff is shown for a collection)');
  const dryRun = isDryRun(info, body);
  if (dryRun) notes.push('dry run: the API server validates and runs admission, and stores nothing');
  return ok({
    title: titleOf(info, ref, mediaType, dryRun),
    body: body === undefined ? '' : render(maskBody(body, mediaType, m, kind), notes),
    diff,
    notes: [...new Set(notes)],
    forward: body === undefined ? undefined : { contentType: SENT_AS_JSON.has(mediaType) ? 'application/json' : mediaType, body: JSON.stringify(body) },
  });
}

function decodeBody(info: ResourceRequestInfo, mediaType: string, raw: Buffer): Result<unknown, ReviewRefusal> {
  if (raw.length === 0) {
    return info.verb === 'delete' || info.verb === 'deletecollection' ? ok(undefined) : refuse('malformed', `a ${info.verb} needs a body`);
  }
  const patch = info.verb === 'patch';
  if (patch ? !(mediaType in PATCH_TYPES) : !OBJECT_TYPES.has(mediaType)) {
    return refuse('unreviewable', `the agent shows ${patch ? 'JSON, merge, strategic merge and apply patches' : 'JSON and YAML bodies'}, not ${mediaType || 'a body without a content type'}`);
  }
  if (mediaType === PROTOBUF_MEDIA_TYPE) {
    const read = decodeProtobufObject(raw);
    return read.ok ? read : refuse('unreviewable', read.error);
  }
  const text = raw.toString('utf8');
  let value: unknown;
  if (mediaType === 'application/yaml' || mediaType === 'application/apply-patch+yaml') {
    const doc = parseDocument(text, { uniqueKeys: true });
    if (doc.errors.length > 0) return refuse('malformed', `the body is not valid YAML (${doc.errors[0]?.code ?? 'error'})`);
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch {
      return refuse('malformed', 'the body uses YAML aliases beyond what the agent expands');
    }
  } else {
    try {
      value = JSON.parse(text);
    } catch {
      return refuse('malformed', 'the body is not valid JSON');
    }
  }
  const tooMuch = shapeProblem(value, raw.length);
  if (tooMuch) return refuse(tooMuch.code, tooMuch.message);
  if (hasUnsafeNumber(value)) return refuse('unreviewable', 'the body has an integer beyond 2^53, which the agent cannot show and send back exactly');
  const wantArray = mediaType === 'application/json-patch+json';
  if (wantArray ? !Array.isArray(value) : !isObject(value)) return refuse('malformed', wantArray ? 'a JSON patch is an array of operations' : 'the body is not an object');
  return ok(value);
}

/**
 * What makes a parsed body too much to review, found without recursion (the steps after it recurse):
 * nesting past MAX_BODY_NESTING, or more values than the body has bytes. Each value written takes a
 * byte at least, so only YAML aliases repeating a node get there: 99 aliases of a long list made a
 * 150 KB body a 17 MB object to render and send.
 */
function shapeProblem(value: unknown, bytes: number): ReviewRefusal | undefined {
  const pending: [unknown, number][] = [[value, 0]];
  let values = 0;
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const [v, depth] = next;
    if (++values > bytes) return { code: 'too-large', message: `the body's aliases expand it to more values than its ${bytes} bytes` };
    if (typeof v !== 'object' || v === null) continue;
    if (depth >= MAX_BODY_NESTING) return { code: 'malformed', message: `the body nests deeper than ${MAX_BODY_NESTING} levels` };
    for (const child of Object.values(v)) pending.push([child, depth + 1]);
  }
  return undefined;
}

function hasUnsafeNumber(v: unknown): boolean {
  if (typeof v === 'number') return Number.isInteger(v) && !Number.isSafeInteger(v);
  if (Array.isArray(v)) return v.some(hasUnsafeNumber);
  return isObject(v) && Object.values(v).some(hasUnsafeNumber);
}

/** The object the request leaves (`after` undefined: deleted), computed from the live one; undefined when it cannot be. */
function objectAfter(info: ResourceRequestInfo, live: unknown, mediaType: string, body: unknown, notes: string[]): Result<{ after: unknown } | undefined, ReviewRefusal> {
  if (info.verb === 'delete' || info.verb === 'deletecollection') return ok({ after: undefined });
  if (info.verb !== 'patch') return ok({ after: body });
  if (live === undefined && mediaType !== 'application/apply-patch+yaml') {
    notes.push('no live object was read: only the patch is shown');
    return ok(undefined);
  }
  switch (mediaType as PatchContentType) {
    case 'application/json-patch+json': {
      const applied = applyJsonPatch(live, body);
      if (applied.ok) return ok({ after: applied.value });
      notes.push(`the patch does not apply to the live object (operation ${applied.error.operation}: ${applied.error.message}); the API server will refuse it`);
      return ok(undefined);
    }
    case 'application/merge-patch+json':
      return ok({ after: mergePatch(live, body) });
    case 'application/strategic-merge-patch+json':
    case 'application/apply-patch+yaml': {
      const apply = mediaType === 'application/apply-patch+yaml';
      const merged = strategicMerge(live ?? {}, body, apply);
      if (merged.approximate) {
        notes.push(
          apply
            ? 'server-side apply: the result is approximate (fields this manager set before and leaves out now are removed by the server, not here)'
            : 'the result is approximate: the patch uses ordering or retainKeys directives',
        );
      }
      return ok({ after: merged.result });
    }
    default:
      return refuse('unreviewable', `unknown patch type ${mediaType}`);
  }
}

/** A Secret as the API server stores it: `stringData` values encoded into `data` (and winning over it), `stringData` gone. */
function foldStringData(secret: unknown): unknown {
  if (!isObject(secret) || !isObject(secret.stringData)) return secret;
  const { stringData, ...rest } = secret;
  const encoded = Object.entries(stringData).map(([key, value]) => [key, typeof value === 'string' ? Buffer.from(value).toString('base64') : value]);
  return { ...rest, data: { ...(isObject(secret.data) ? secret.data : {}), ...Object.fromEntries(encoded) } };
}

/**
 * The masked `after` with each Secret value that differs from the live one marked as changed, and a
 * value that is the mask itself (base64 of `****`) called out.
 */
function markSecretChanges(live: unknown, after: unknown, masked: unknown, notes: string[]): unknown {
  if (!isObject(after) || !isObject(masked) || !isObject(after.data) || !isObject(masked.data)) return masked;
  const liveData = isObject(live) && isObject(live.data) ? live.data : {};
  const shown = masked.data;
  const marked = Object.entries(after.data).map(([key, value]) => {
    if (value === SECRET_DATA_MASK) {
      notes.push(`Secret key ${key} is set to the mask itself (${SECRET_DATA_MASK}, base64 of ${SECRET_STRING_MASK}): was the manifest saved from a masked read?`);
      return [key, `${String(shown[key])}${PLACEHOLDER_MARK}`];
    }
    return [key, value === liveData[key] ? shown[key] : `${String(shown[key])}${CHANGED_MARK}`];
  });
  return { ...masked, data: Object.fromEntries(marked) };
}

/** The request body masked: a JSON patch's values (all of them on a Secret), else as an object of the request's kind. */
function maskBody(body: unknown, mediaType: string, m: KubeMasking, kind: string | undefined): unknown {
  if (mediaType !== 'application/json-patch+json' || !Array.isArray(body)) return maskKubeObject(body, m, kind);
  if (m.secrets) return body.map((op: unknown) => (isObject(op) && 'value' in op ? { ...op, value: SECRET_STRING_MASK } : op));
  return m.profile ? maskJson(body, m.profile) : body;
}

/** YAML as a reviewer reads manifests; managedFields left out (bookkeeping that would drown the change). */
function render(obj: unknown, notes: string[]): string {
  if (obj === undefined) return '';
  if (isObject(obj) && isObject(obj.metadata) && 'managedFields' in obj.metadata) {
    const { managedFields: _dropped, ...metadata } = obj.metadata;
    notes.push('metadata.managedFields is left out');
    return stringify({ ...obj, metadata }, { lineWidth: 0 });
  }
  return stringify(obj, { lineWidth: 0 });
}

/** Whether the request is a dry run: a delete's options come from its body when it has one (the API server then ignores the query), else from the query. */
function isDryRun(info: ResourceRequestInfo, body: unknown): boolean {
  if (!isDelete(info) || body === undefined) return info.dryRun;
  return isObject(body) && Array.isArray(body.dryRun) && body.dryRun.includes('All');
}

const isDelete = (info: ResourceRequestInfo): boolean => info.verb === 'delete' || info.verb === 'deletecollection';
/** DeleteOptions a query may carry; with a body the API server reads none of them. */
const DELETE_OPTION_PARAMETERS = ['dryRun', 'gracePeriodSeconds', 'propagationPolicy', 'orphanDependents', 'ignoreStoreReadErrorWithClusterBreakingPotential'];

function titleOf(info: ResourceRequestInfo, ref: string, mediaType: string, dryRun: boolean): string {
  const resource = `${info.group ? `${info.group}/` : ''}${info.resource}${info.subresource ? `/${info.subresource}` : ''}`;
  const how = info.verb === 'patch' && mediaType in PATCH_TYPES ? ` (${PATCH_TYPES[mediaType as PatchContentType]})` : '';
  return `${info.verb} ${resource} ${info.verb === 'deletecollection' ? info.namespace ?? '(all namespaces)' : ref}${how}${dryRun ? ' [dry run]' : ''}`;
}

const kindOf = (v: unknown): string | undefined => (isObject(v) && typeof v.kind === 'string' ? v.kind : undefined);
const nameOf = (v: unknown): string | undefined => (isObject(v) && isObject(v.metadata) && typeof v.metadata.name === 'string' ? v.metadata.name : undefined);
