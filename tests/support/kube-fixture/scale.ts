import { clone, ensure, field, isObject, metadataOf, text, type Json, type JsonObject } from './json';
import type { ResourceKind } from './kinds';
import { jsonPatch, mergePatch } from './patch';
import { decodeBody, get, update, type ResourceRequest, type ResourceResult, type RestContext } from './rest';
import { badRequest, conflict, STALE_OBJECT, unsupportedMediaType } from './status';

/** `autoscaling/v1` Scale of a deployment or replica set, as the scale subresource presents it. */
function scaleOf(owner: JsonObject): JsonObject {
  const metadata = metadataOf(owner);
  const selector = Object.entries(field(field(field(owner, 'spec'), 'selector'), 'matchLabels')).map(([k, v]) => `${k}=${String(v)}`).join(',');
  return {
    kind: 'Scale',
    apiVersion: 'autoscaling/v1',
    metadata: { name: metadata.name ?? '', namespace: metadata.namespace ?? '', uid: metadata.uid ?? '', resourceVersion: metadata.resourceVersion ?? '', creationTimestamp: metadata.creationTimestamp ?? null },
    spec: { replicas: Number(field(owner, 'spec').replicas ?? 0) },
    status: { replicas: Number(field(owner, 'status').replicas ?? 0), selector },
  };
}

const SCALE_PATCH_TYPES = ['application/json-patch+json', 'application/merge-patch+json', 'application/strategic-merge-patch+json'];

/** GET, PUT and PATCH of `{deployments,replicasets}/{name}/scale`; writes change the owner's `spec.replicas`. */
export function scale(ctx: RestContext, req: ResourceRequest & { info: { kind: ResourceKind } }, method: string): ResourceResult {
  const owner = get(ctx, req).value;
  const current = scaleOf(owner);
  if (method === 'GET') return { status: 200, value: current };
  let wanted: Json;
  if (method === 'PUT') wanted = decodeBody(req.body, req.contentType);
  else {
    const type = req.contentType.split(';')[0]?.trim() ?? '';
    if (!SCALE_PATCH_TYPES.includes(type)) throw unsupportedMediaType(type, SCALE_PATCH_TYPES);
    const body = decodeBody(req.body, type);
    wanted = type === 'application/json-patch+json' ? jsonPatch(current, body) : mergePatch(current, body);
  }
  if (!isObject(wanted)) throw badRequest('the scale must be an object');
  const replicas = field(wanted, 'spec').replicas;
  if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) throw badRequest('spec.replicas: Invalid value: must be a non-negative integer');
  const rv = text(metadataOf(wanted).resourceVersion);
  if (rv && rv !== metadataOf(owner).resourceVersion) throw conflict(req.info.kind.resource, req.info.kind.group, req.info.name ?? '', STALE_OBJECT);
  const next = clone(owner);
  ensure(next, 'spec').replicas = replicas;
  const written = update(ctx, { ...req, body: Buffer.from(JSON.stringify(next)), contentType: 'application/json' });
  return { status: 200, value: scaleOf(written.value) };
}
