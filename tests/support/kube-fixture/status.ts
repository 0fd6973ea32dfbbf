/**
 * `metav1.Status` failures shaped exactly as kube-apiserver writes them (k8s.io/apimachinery
 * pkg/api/errors): kubectl prints `message`, decides on `reason`, and reads `details`.
 */
export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: { reason: string; message: string; field?: string }[];
  retryAfterSeconds?: number;
}

export interface KubeStatus {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure' | 'Success';
  message?: string;
  reason?: string;
  details?: StatusDetails;
  code: number;
}

/** A request that ends in a Status failure; thrown by handlers, written by the server. */
export class KubeStatusError extends Error {
  constructor(readonly status: KubeStatus) {
    super(status.message);
  }
}

function failure(code: number, reason: string, message: string, details?: StatusDetails): KubeStatusError {
  return new KubeStatusError({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code });
}

/** `resource` is the plural, qualified with its group when it has one (`deployments.apps`). */
export function qualified(resource: string, group: string): string {
  return group ? `${resource}.${group}` : resource;
}

export const notFound = (resource: string, group: string, name: string): KubeStatusError =>
  failure(404, 'NotFound', `${qualified(resource, group)} "${name}" not found`, { name, ...(group ? { group } : {}), kind: resource });

export const alreadyExists = (resource: string, group: string, name: string): KubeStatusError =>
  failure(409, 'AlreadyExists', `${qualified(resource, group)} "${name}" already exists`, { name, ...(group ? { group } : {}), kind: resource });

export const conflict = (resource: string, group: string, name: string, why: string): KubeStatusError =>
  failure(409, 'Conflict', `Operation cannot be fulfilled on ${qualified(resource, group)} "${name}": ${why}`, { name, ...(group ? { group } : {}), kind: resource });

export const STALE_OBJECT = 'the object has been modified; please apply your changes to the latest version and try again';

export interface FieldProblem {
  field: string;
  type: 'FieldValueInvalid' | 'FieldValueRequired' | 'FieldValueNotSupported' | 'FieldValueForbidden';
  /** What follows "Invalid value: " etc.; absent for a bare "Required value". */
  detail?: string;
}

const PROBLEM_TEXT: Record<FieldProblem['type'], string> = {
  FieldValueInvalid: 'Invalid value',
  FieldValueRequired: 'Required value',
  FieldValueNotSupported: 'Unsupported value',
  FieldValueForbidden: 'Forbidden',
};

/** 422: `Pod "x" is invalid: spec.containers: Required value` (one cause per field problem). */
export function invalid(kind: string, group: string, name: string, problems: FieldProblem[]): KubeStatusError {
  const causes = problems.map((p) => ({ reason: p.type, message: p.detail === undefined ? PROBLEM_TEXT[p.type] : `${PROBLEM_TEXT[p.type]}: ${p.detail}`, field: p.field }));
  const text = causes.map((c) => `${c.field}: ${c.message}`);
  const joined = text.length === 1 ? text[0] : `[${text.join(', ')}]`;
  return failure(422, 'Invalid', `${qualified(kind, group)} "${name}" is invalid: ${joined}`, { name, ...(group ? { group } : {}), kind, causes });
}

export interface Forbidden {
  user: string;
  verb: string;
  resource: string;
  subresource?: string;
  group: string;
  namespace?: string;
  name?: string;
}

/** The RBAC authorizer's refusal, with the reason text the real server appends for "no rule". */
export function forbidden(f: Forbidden): KubeStatusError {
  const full = f.subresource ? `${f.resource}/${f.subresource}` : f.resource;
  const subject = f.name ? `${qualified(f.resource, f.group)} "${f.name}"` : qualified(f.resource, f.group);
  const scope = f.namespace ? ` in the namespace "${f.namespace}"` : ' at the cluster scope';
  const message = `${subject} is forbidden: User "${f.user}" cannot ${f.verb} resource "${full}" in API group "${f.group}"${scope}`;
  return failure(403, 'Forbidden', message, { ...(f.name ? { name: f.name } : {}), ...(f.group ? { group: f.group } : {}), kind: f.resource });
}

export const unauthorized = (): KubeStatusError => failure(401, 'Unauthorized', 'Unauthorized');
export const badRequest = (message: string): KubeStatusError => failure(400, 'BadRequest', message);
export const methodNotAllowed = (): KubeStatusError => failure(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource', {});
export const notAcceptable = (supported: readonly string[]): KubeStatusError =>
  failure(406, 'NotAcceptable', `only the following media types are accepted: ${supported.join(', ')}`);
export const unsupportedMediaType = (contentType: string, supported: readonly string[]): KubeStatusError =>
  failure(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: ${supported.join(', ')}`, { causes: [{ reason: 'UnsupportedMediaType', message: contentType }] });
export const pathNotFound = (): KubeStatusError => failure(404, 'NotFound', 'the server could not find the requested resource');
export const entityTooLarge = (): KubeStatusError => failure(413, 'RequestEntityTooLarge', 'Request entity too large: limit is 3145728');
export const requestTimeout = (): KubeStatusError => failure(408, 'Timeout', 'request body timed out');
export const gone = (message: string): KubeStatusError => failure(410, 'Expired', message);
/** A patch that cannot apply: the generic 422 with the patch library's error as the cause. */
export const patchRejected = (cause: string): KubeStatusError => failure(422, 'Invalid', 'the server rejected our request due to an error in our request', { causes: [{ reason: 'FieldValueInvalid', message: cause }] });
/** Server-side apply's field manager conflicts (409), one cause per contested field. */
export const applyConflict = (message: string, causes: NonNullable<StatusDetails['causes']>): KubeStatusError => failure(409, 'Conflict', message, { causes });
export const internal = (message: string): KubeStatusError => failure(500, 'InternalError', `Internal error occurred: ${message}`);
