import { parseAllDocuments } from 'yaml';

/** A manifest may hold this many objects (`twokey exec -f`). */
export const MAX_MANIFEST_OBJECTS = 100;
/** The field manager twokey's server-side applies are recorded under. */
export const FIELD_MANAGER = 'twokey';

/** One API resource as discovery lists it (`/api/v1`, `/apis/G/V`: APIResourceList.resources). */
export interface DiscoveredResource {
  readonly name: string;
  readonly kind: string;
  readonly namespaced: boolean;
}

/** A server-side apply of one object: the PATCH path and the object (sent as JSON, YAML's subset). */
export interface ApplyRequest {
  readonly path: string;
  readonly object: Record<string, unknown>;
  /** `Kind namespace/name`, for the caller's output. */
  readonly label: string;
}

export class ManifestError extends Error {
  override name = 'ManifestError';
}

/** The objects of a manifest (YAML documents, `---` separated; empty documents skipped), with apiVersion, kind and metadata.name. */
export function manifestObjects(text: string): Record<string, unknown>[] {
  const docs = parseAllDocuments(text, { uniqueKeys: true });
  if (!Array.isArray(docs)) throw new ManifestError('the manifest is not YAML');
  const objects: Record<string, unknown>[] = [];
  for (const doc of docs) {
    if (doc.errors.length > 0) throw new ManifestError(`the manifest is not YAML: ${doc.errors[0]?.message.split('\n')[0] ?? ''}`);
    const value = doc.toJS() as unknown;
    if (value === null || value === undefined) continue;
    if (typeof value !== 'object' || Array.isArray(value)) throw new ManifestError('each document of the manifest must be one object');
    const o = value as Record<string, unknown>;
    const metadata = o.metadata as Record<string, unknown> | undefined;
    if (typeof o.apiVersion !== 'string' || typeof o.kind !== 'string' || typeof metadata?.name !== 'string') throw new ManifestError('each object needs apiVersion, kind and metadata.name');
    if (o.kind.endsWith('List')) throw new ManifestError(`${o.kind}: apply the items one by one (a List is not an API object)`);
    objects.push(o);
  }
  if (objects.length === 0) throw new ManifestError('the manifest holds no object');
  if (objects.length > MAX_MANIFEST_OBJECTS) throw new ManifestError(`the manifest holds over ${MAX_MANIFEST_OBJECTS} objects`);
  return objects;
}

/** The discovery path that lists an apiVersion's resources. */
export function discoveryPath(apiVersion: string): string {
  return apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
}

/**
 * The server-side apply request for an object, from its group-version's discovered resources (the
 * resource whose kind it is, not a subresource). A namespaced object without a namespace goes to
 * `defaultNamespace`, as kubectl does.
 */
export function applyRequest(object: Record<string, unknown>, resources: readonly DiscoveredResource[], defaultNamespace: string): ApplyRequest {
  const apiVersion = object.apiVersion as string;
  const kind = object.kind as string;
  const metadata = object.metadata as Record<string, unknown>;
  const resource = resources.find((r) => r.kind === kind && !r.name.includes('/'));
  if (!resource) throw new ManifestError(`the API server serves no ${kind} in ${apiVersion}`);
  const name = metadata.name as string;
  const namespace = resource.namespaced ? (typeof metadata.namespace === 'string' ? metadata.namespace : defaultNamespace) : undefined;
  const segment = (s: string) => encodeURIComponent(s);
  const base = discoveryPath(apiVersion);
  const path = `${base}${namespace !== undefined ? `/namespaces/${segment(namespace)}` : ''}/${resource.name}/${segment(name)}?fieldManager=${FIELD_MANAGER}`;
  const withNamespace = namespace !== undefined ? { ...object, metadata: { ...metadata, namespace } } : object;
  return { path, object: withNamespace, label: `${kind} ${namespace !== undefined ? `${namespace}/` : ''}${name}` };
}
