import { createHash } from 'node:crypto';
import { GROUPS, isStored, KINDS, type ResourceKind } from './kinds';
import type { JsonObject } from './json';

/** `/version` of the release the fixture imitates. */
export const VERSION_INFO = {
  major: '1',
  minor: '32',
  gitVersion: 'v1.32.4',
  gitCommit: '59526cd4867447956156ae3a602fcbac5a8d9ee0',
  gitTreeState: 'clean',
  buildDate: '2025-04-22T16:00:00Z',
  goVersion: 'go1.23.6',
  compiler: 'gc',
  platform: 'linux/amd64',
};

const kindsOf = (group: string): ResourceKind[] => KINDS.filter((k) => k.group === group);

/** The storage version hash: a digest of the stored group/version/kind clients use to detect migrations. */
const storageHash = (k: ResourceKind): string => createHash('sha256').update(`${k.group}/${k.version}/${k.kind}`).digest().subarray(0, 8).toString('base64');

/** `GET /api/v1` or `/apis/apps/v1`: the legacy APIResourceList. */
export function resourceList(group: string): JsonObject {
  const resources: JsonObject[] = [];
  for (const k of kindsOf(group)) {
    resources.push({ name: k.resource, singularName: k.singular, namespaced: k.namespaced, kind: k.kind, verbs: k.verbs, ...(k.shortNames.length ? { shortNames: k.shortNames } : {}), ...(k.categories.length ? { categories: k.categories } : {}), ...(isStored(k) ? { storageVersionHash: storageHash(k) } : {}) });
    for (const s of k.subresources) {
      resources.push({ name: `${k.resource}/${s.name}`, singularName: '', namespaced: k.namespaced, ...(s.group !== k.group ? { group: s.group, version: s.version } : {}), kind: s.kind, verbs: s.verbs });
    }
  }
  const groupVersion = group ? `${group}/v1` : 'v1';
  return group ? { kind: 'APIResourceList', apiVersion: 'v1', groupVersion, resources } : { kind: 'APIResourceList', groupVersion, resources };
}


const groupVersionEntry = (group: string): JsonObject => ({ groupVersion: `${group}/v1`, version: 'v1' });

/** `GET /api`. */
export const apiVersions = (serverAddress: string): JsonObject => ({ kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] });

/** `GET /apis/{group}`. */
export const apiGroup = (group: string): JsonObject => ({ kind: 'APIGroup', apiVersion: 'v1', name: group, versions: [groupVersionEntry(group)], preferredVersion: groupVersionEntry(group) });

/** `GET /apis`. */
export const apiGroupList = (): JsonObject => ({ kind: 'APIGroupList', apiVersion: 'v1', groups: GROUPS.map((g) => ({ name: g, versions: [groupVersionEntry(g)], preferredVersion: groupVersionEntry(g) })) });

function aggregatedGroup(group: string): JsonObject {
  const resources = kindsOf(group).map((k) => ({
    resource: k.resource,
    responseKind: { group: k.group, version: k.version, kind: k.kind },
    scope: k.namespaced ? 'Namespaced' : 'Cluster',
    singularResource: k.singular,
    verbs: k.verbs,
    ...(k.shortNames.length ? { shortNames: k.shortNames } : {}),
    ...(k.categories.length ? { categories: k.categories } : {}),
    ...(k.subresources.length ? { subresources: k.subresources.map((s) => ({ subresource: s.name, responseKind: { group: s.group, version: s.version, kind: s.kind }, verbs: s.verbs })) } : {}),
  }));
  return { metadata: group ? { name: group, creationTimestamp: null } : { creationTimestamp: null }, versions: [{ version: 'v1', resources, freshness: 'Current' }] };
}

/**
 * The aggregated discovery document (KEP-3352) for `/api` (the core group) or `/apis` (the rest):
 * one request instead of one per group version.
 */
export function aggregatedDiscovery(which: 'api' | 'apis', version: 'v2' | 'v2beta1'): JsonObject {
  const items = which === 'api' ? [aggregatedGroup('')] : GROUPS.map(aggregatedGroup);
  return { kind: 'APIGroupDiscoveryList', apiVersion: `apidiscovery.k8s.io/${version}`, metadata: {}, items };
}

export const aggregatedContentType = (version: 'v2' | 'v2beta1'): string => `application/json;g=apidiscovery.k8s.io;v=${version};as=APIGroupDiscoveryList`;

