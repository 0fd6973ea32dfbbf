import { field, isObject, text, type JsonObject } from './json';
import { badRequest } from './status';

/** Who a bearer token is, and whether RBAC lets it write (`read`: get, list and watch only). */
export interface FixtureToken {
  user: string;
  access: 'read' | 'write';
}

const READ_VERBS = new Set(['get', 'list', 'watch']);

/** The fixture's RBAC: `read` tokens may get, list and watch; `write` tokens may do anything. */
export const allows = (token: FixtureToken, verb: string): boolean => token.access === 'write' || READ_VERBS.has(verb);

/**
 * `POST .../selfsubjectaccessreviews` (`kubectl auth can-i`): the review comes back with its
 * status filled in by the same rule every request is authorized by. Any authenticated user may ask.
 */
export function reviewAccess(token: FixtureToken, review: JsonObject): JsonObject {
  const attributes = field(field(review, 'spec'), 'resourceAttributes');
  const nonResource = field(field(review, 'spec'), 'nonResourceAttributes');
  const verb = text(attributes.verb) ?? text(nonResource.verb);
  if (!isObject(review.spec) || !verb) throw badRequest('SelfSubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes: Invalid value: exactly one of nonResourceAttributes or resourceAttributes must be specified');
  const allowed = allows(token, verb);
  return { ...review, kind: 'SelfSubjectAccessReview', apiVersion: 'authorization.k8s.io/v1', metadata: { creationTimestamp: null }, status: allowed ? { allowed: true, reason: `RBAC: allowed by the fixture's ${token.access} token` } : { allowed: false } };
}
