/** Bounds on what a groups claim may hold: a token is small, but a claim path must not walk forever. */
export const MAX_CLAIM_PATH_DEPTH = 8;
export const MAX_GROUPS = 1000;

/**
 * The value at a claim path: the claim named exactly so first (`cognito:groups`, or a namespaced
 * claim with dots such as `https://example.com/groups`), else a dotted walk through nested
 * objects (Keycloak's `realm_access.roles`, `resource_access.twokey.roles`).
 */
export function readClaimPath(payload: Readonly<Record<string, unknown>>, path: string): unknown {
  if (Object.hasOwn(payload, path)) return payload[path];
  const parts = path.split('.');
  if (parts.length > MAX_CLAIM_PATH_DEPTH) return undefined;
  let value: unknown = payload;
  for (const part of parts) {
    if (value === null || typeof value !== 'object' || Array.isArray(value) || !Object.hasOwn(value, part)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

/** Groups at a claim path: an array of strings (others dropped), or one space- or comma-separated string (Entra's `roles` is an array, some IdPs send `scp`-style strings). */
export function groupsAt(payload: Readonly<Record<string, unknown>>, path: string): string[] {
  const claim = readClaimPath(payload, path);
  const groups = Array.isArray(claim)
    ? claim.filter((g): g is string => typeof g === 'string' && g.length > 0)
    : typeof claim === 'string'
      ? claim.split(/[\s,]+/).filter(Boolean)
      : [];
  return groups.slice(0, MAX_GROUPS);
}
