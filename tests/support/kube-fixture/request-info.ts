import { findKind, type ResourceKind } from './kinds';
import { badRequest } from './status';

/** What a request addresses, by the API conventions' path layout (the apiserver's RequestInfo). */
export interface RequestInfo {
  verb: 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete' | 'deletecollection';
  apiGroup: string;
  apiVersion: string;
  resource: string;
  kind: ResourceKind | undefined;
  namespace?: string;
  name?: string;
  subresource?: string;
}

const METHOD_VERBS: Record<string, RequestInfo['verb']> = { POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: 'delete', GET: 'get', HEAD: 'get' };
/** Subresources that stream a connection; RBAC checks `create` on them whatever the method. */
const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);
export const CONNECT_SUBRESOURCES = new Set(['exec', 'attach', 'portforward']);

/**
 * `/api/v1/...` or `/apis/{group}/{version}/...` into a RequestInfo; undefined for anything that is
 * not a resource path (discovery documents and the like); a 400 for a malformed escape.
 */
export function requestInfo(method: string, pathname: string, query: URLSearchParams): RequestInfo | undefined {
  let parts: string[];
  try {
    parts = pathname.split('/').filter(Boolean).map(decodeURIComponent);
  } catch {
    throw badRequest(`invalid URL escape in ${JSON.stringify(pathname)}`);
  }
  let group: string;
  let version: string;
  let rest: string[];
  if (parts[0] === 'api' && parts.length >= 3) [group, version, rest] = ['', parts[1] ?? '', parts.slice(2)];
  else if (parts[0] === 'apis' && parts.length >= 4) [group, version, rest] = [parts[1] ?? '', parts[2] ?? '', parts.slice(3)];
  else return undefined;
  let watchPath = false;
  if (rest[0] === 'watch') {
    watchPath = true;
    rest = rest.slice(1);
  }
  // `namespaces/{ns}/{resource}...` scopes a resource; `namespaces/{name}[/status|/finalize]` is the namespace itself.
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length > 2 && !NAMESPACE_SUBRESOURCES.has(rest[2] ?? '')) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const [resource = '', name, subresource, ...extra] = rest;
  if (extra.length || !resource) return undefined;
  let verb = METHOD_VERBS[method] ?? 'get';
  if (name === undefined) {
    if (verb === 'get') verb = watchPath || query.get('watch') === 'true' || query.get('watch') === '1' ? 'watch' : 'list';
    if (verb === 'delete') verb = 'deletecollection';
  } else if (watchPath) verb = 'watch';
  if (subresource && CONNECT_SUBRESOURCES.has(subresource)) verb = 'create';
  return { verb, apiGroup: group, apiVersion: version, resource, kind: findKind(group, version, resource), ...(namespace !== undefined ? { namespace } : {}), ...(name !== undefined ? { name } : {}), ...(subresource ? { subresource } : {}) };
}
