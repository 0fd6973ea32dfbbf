import { err, ok, type Result } from '../result';

/** The header `twokey exec` (and the MCP kubectl tool) gives a reason in (kubectl sends none); never sent upstream. */
export const REASON_HEADER = 'x-twokey-reason';

/**
 * What a Kubernetes API request is, by the API conventions (the attributes kube-apiserver's
 * RequestInfoFactory derives and RBAC authorizes on). Pure: method, path, query and headers in,
 * attributes out. Anything this reading and the API server's could disagree on is refused rather than
 * guessed: a path whose segments decode to `/`, `.` or `..`, empty segments, a query with `;` or with
 * a parameter this reading depends on given twice.
 */

/** Longest request path accepted (kubectl's longest are proxy paths; names are at most 253 characters). */
export const MAX_KUBE_PATH_BYTES = 4096;
/** Longest query string accepted (label and field selectors, exec's `command=` parameters). */
export const MAX_KUBE_QUERY_BYTES = 16 * 1024;
/** Most path segments accepted (a proxy subpath is the only long one). */
export const MAX_KUBE_PATH_SEGMENTS = 64;

/** API prefixes: `/api` holds the core group (no group segment), `/apis` every named group. */
const GROUPLESS_PREFIX = 'api';
const GROUP_PREFIX = 'apis';
/** Verbs given as a path segment (`/api/v1/watch/pods`, `/api/v1/proxy/nodes/n`): deprecated, still served. */
const PATH_VERBS = new Set(['watch', 'proxy']);
/** `namespaces/{name}/{x}`: these `x` are subresources of the namespace, anything else a resource in it. */
const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);
/** Query parameters whose meaning this reading depends on: given twice, the API server and we might pick different ones. */
const SINGLE_VALUED_PARAMETERS = ['watch', 'dryRun', 'fieldSelector', 'labelSelector', 'as', 'includeObject'];

export const API_VERBS = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection', 'proxy'] as const;
export type ApiVerb = (typeof API_VERBS)[number];

/** A request for an API resource (`/api/v1/namespaces/default/pods/web`, `/apis/apps/v1/deployments`). */
export interface ResourceRequestInfo {
  readonly kind: 'resource';
  /** The API verb; '' for a method that has none (OPTIONS, TRACE, ...). */
  readonly verb: ApiVerb | '';
  /** The HTTP method, upper case. */
  readonly method: string;
  /** API group; '' for the core group. */
  readonly group: string;
  readonly version: string;
  readonly resource: string;
  readonly subresource?: string;
  readonly namespace?: string;
  readonly name?: string;
  /** Segments after the subresource (a `proxy` subresource's path on the pod, service or node). */
  readonly rest: readonly string[];
  /** The path rebuilt from the decoded segments: what the agent forwards, never the caller's bytes (with `query.toString()`). */
  readonly path: string;
  /** The query parameters (decoded). */
  readonly query: URLSearchParams;
  /** `dryRun=All` (the one value the API server accepts): it validates without persisting. Still a write: it runs admission on the write credential. */
  readonly dryRun: boolean;
  /** The request asks to switch protocols (exec, attach and port-forward over WebSocket or SPDY). */
  readonly upgrade: boolean;
}

/** Anything else: discovery (`/api`, `/apis/apps/v1`), `/version`, `/openapi/v3`, health checks, ... */
export interface NonResourceRequestInfo {
  readonly kind: 'non-resource';
  /** The HTTP method, lower case, as RBAC's non-resource rules name it. */
  readonly verb: string;
  readonly method: string;
  readonly path: string;
  readonly segments: readonly string[];
  readonly query: URLSearchParams;
  readonly upgrade: boolean;
}

export type KubeRequestInfo = ResourceRequestInfo | NonResourceRequestInfo;

export type KubeRequestRefusal =
  | { readonly code: 'too-large'; readonly message: string }
  | { readonly code: 'malformed'; readonly message: string }
  | { readonly code: 'impersonation'; readonly message: string };

/** Headers as Node gives them (`IncomingHttpHeaders`): any case is accepted here. */
export type RequestHeaders = Readonly<Record<string, string | readonly string[] | undefined>>;

const refuse = (code: KubeRequestRefusal['code'], message: string): { ok: false; error: KubeRequestRefusal } => err({ code, message: `twokey: ${message}` });

/**
 * The attributes of one request. `path` is the URL path as sent (percent-encoded), `query` the raw
 * query string without `?`.
 */
export function requestInfo(method: string, path: string, query: string, headers: RequestHeaders): Result<KubeRequestInfo, KubeRequestRefusal> {
  if (Buffer.byteLength(path) > MAX_KUBE_PATH_BYTES) return refuse('too-large', `request path over ${MAX_KUBE_PATH_BYTES} bytes`);
  if (Buffer.byteLength(query) > MAX_KUBE_QUERY_BYTES) return refuse('too-large', `query string over ${MAX_KUBE_QUERY_BYTES} bytes`);
  const headerProblem = refusedHeader(headers);
  if (headerProblem) return err(headerProblem);
  const segments = pathSegments(path);
  if (!segments.ok) return segments;
  const params = queryParameters(query);
  if (!params.ok) return params;
  const upperMethod = method.toUpperCase();
  const trailingSlash = path.endsWith('/');
  const upgrade = headerValues(headers, 'upgrade').length > 0;
  const parts = segments.value;
  const resource = resourceRequest(upperMethod, parts, params.value, upgrade, trailingSlash);
  if (resource) return resource;
  return ok({ kind: 'non-resource', verb: upperMethod.toLowerCase(), method: upperMethod, path: joinPath(parts, trailingSlash), segments: parts, query: params.value, upgrade });
}

/**
 * Impersonation (`Impersonate-User`, `-Group`, `-Uid`, `-Extra-*`) would make the agent's credential
 * act as someone else: never forwarded, so refused outright. A method override is refused too: the
 * verb must be the one this reading saw.
 */
function refusedHeader(headers: RequestHeaders): KubeRequestRefusal | undefined {
  for (const [key, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const lower = key.toLowerCase();
    if (lower.startsWith('impersonate-')) return { code: 'impersonation', message: `twokey: impersonation headers are refused (${key})` };
    if (lower === 'x-http-method-override' || lower === 'x-http-method' || lower === 'x-method-override') {
      return { code: 'malformed', message: `twokey: method override headers are refused (${key})` };
    }
  }
  return undefined;
}

function headerValues(headers: RequestHeaders, name: string): string[] {
  const values: string[] = [];
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() !== name || value === undefined) continue;
    if (typeof value === 'string') values.push(value);
    else values.push(...value);
  }
  return values;
}

/** Characters a decoded segment may hold: printable ASCII without the ones that change how a path or URL reads. */
const SEGMENT_CHARACTERS = /^[\x21-\x7e]+$/;
const SEGMENT_FORBIDDEN = /[/\\%?#]/;

/** Decoded path segments, refusing any path the API server could read differently. */
function pathSegments(path: string): Result<string[], KubeRequestRefusal> {
  if (!path.startsWith('/')) return refuse('malformed', 'the request path must start with /');
  // Go's RequestInfoFactory trims slashes at both ends; anything empty in between is not a path it serves.
  const trimmed = path.replace(/^\/+/, '').replace(/\/+$/, '');
  if (trimmed === '') return ok([]);
  const raw = trimmed.split('/');
  if (raw.length > MAX_KUBE_PATH_SEGMENTS) return refuse('too-large', `request path has over ${MAX_KUBE_PATH_SEGMENTS} segments`);
  const out: string[] = [];
  for (const r of raw) {
    let s: string;
    try {
      s = decodeURIComponent(r);
    } catch {
      return refuse('malformed', 'the request path has an invalid percent-encoding');
    }
    if (s === '' || s === '.' || s === '..' || !SEGMENT_CHARACTERS.test(s) || SEGMENT_FORBIDDEN.test(s)) {
      return refuse('malformed', `the request path has a segment the agent does not forward (${JSON.stringify(s.slice(0, 64))})`);
    }
    out.push(s);
  }
  return ok(out);
}

/**
 * Go's url.ParseQuery drops a pair with `;` or an invalid percent-encoding, where URLSearchParams keeps
 * it: `dryRun=%zz` would be a dry run to us and a real write to the API server. Both are refused.
 */
function queryParameters(query: string): Result<URLSearchParams, KubeRequestRefusal> {
  if (query.includes(';')) return refuse('malformed', 'the query string has a ";"');
  for (const pair of query.split('&')) {
    try {
      decodeURIComponent(pair.replace(/\+/g, ' '));
    } catch {
      return refuse('malformed', 'the query string has an invalid percent-encoding');
    }
  }
  const params = new URLSearchParams(query);
  for (const p of SINGLE_VALUED_PARAMETERS) if (params.getAll(p).length > 1) return refuse('malformed', `the query parameter ${p} is given twice`);
  return ok(params);
}

/** The canonical path; a trailing slash is kept (a proxied path may depend on it). */
const joinPath = (parts: readonly string[], trailingSlash: boolean): string => `/${parts.map(encodeURIComponent).join('/')}${trailingSlash && parts.length > 0 ? '/' : ''}`;

const METHOD_VERBS: Readonly<Record<string, ApiVerb>> = { POST: 'create', GET: 'get', HEAD: 'get', PUT: 'update', PATCH: 'patch', DELETE: 'delete' };

/** The resource attributes of a path under `/api/{version}` or `/apis/{group}/{version}`, or undefined for any other path. */
function resourceRequest(method: string, all: readonly string[], query: URLSearchParams, upgrade: boolean, trailingSlash: boolean): Result<ResourceRequestInfo, KubeRequestRefusal> | undefined {
  const [prefix] = all;
  const grouped = prefix === GROUP_PREFIX;
  // `/api/v1` and `/apis/apps/v1` are discovery documents, not resources.
  if ((prefix !== GROUPLESS_PREFIX && !grouped) || all.length < (grouped ? 4 : 3)) return undefined;
  const group = grouped ? (all[1] as string) : '';
  const version = all[grouped ? 2 : 1] as string;
  let parts = all.slice(grouped ? 3 : 2);
  let verb: ApiVerb | '' = METHOD_VERBS[method] ?? '';
  if (PATH_VERBS.has(parts[0] as string)) {
    if (parts.length < 2) return refuse('malformed', `${parts[0]} needs a resource after it`);
    verb = parts[0] as ApiVerb;
    parts = parts.slice(1);
  }
  let namespace: string | undefined;
  if (parts[0] === 'namespaces' && parts.length > 1) {
    namespace = parts[1];
    if (parts.length > 2 && !NAMESPACE_SUBRESOURCES.has(parts[2] as string)) parts = parts.slice(2);
  }
  const resource = parts[0] as string;
  let name = parts[1];
  // A path-verb proxy takes everything after the name as the proxied path.
  const subresource = verb !== 'proxy' ? parts[2] : undefined;
  const rest = parts.slice(verb === 'proxy' ? 2 : 3);

  if (name === undefined && verb === 'get') {
    verb = watchRequested(query) ? 'watch' : 'list';
    name = nameFromFieldSelector(query.get('fieldSelector'));
  }
  if (name === undefined && verb === 'delete') verb = 'deletecollection';
  return ok({
    kind: 'resource',
    verb,
    method,
    group,
    version,
    resource,
    ...(subresource !== undefined && { subresource }),
    ...(namespace !== undefined && { namespace }),
    ...(name !== undefined && { name }),
    rest,
    path: joinPath(all, trailingSlash),
    query,
    dryRun: query.get('dryRun') === 'All',
    upgrade,
  });
}

/** ListOptions' `watch`: any value but `0` and `false` (any case) is true, as the API server converts it. */
function watchRequested(query: URLSearchParams): boolean {
  const value = query.get('watch');
  return value !== null && value !== '0' && value.toLowerCase() !== 'false';
}

/** `kubectl get pod web -w` lists with `fieldSelector=metadata.name=web`: the API server authorizes it as a request for that name. */
function nameFromFieldSelector(selector: string | null): string | undefined {
  if (selector === null) return undefined;
  const terms = selector.split(',');
  if (terms.length !== 1) return undefined;
  const match = /^metadata\.name==?([^=!,]+)$/.exec(terms[0] as string);
  const name = match?.[1];
  if (name === undefined || name === '.' || name === '..' || SEGMENT_FORBIDDEN.test(name)) return undefined;
  return name;
}
