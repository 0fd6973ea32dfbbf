/** One entry of an Accept header, e.g. `application/json;as=Table;v=v1;g=meta.k8s.io`. */
export interface MediaType {
  type: string;
  params: Record<string, string>;
  q: number;
}

import { OPENAPI_V2_PROTOBUF, OPENAPI_V2_PROTOBUF_ALT } from './openapi-v2-protobuf';

export const JSON_TYPE = 'application/json';
export const YAML_TYPE = 'application/yaml';
export const PROTOBUF_TYPE = 'application/vnd.kubernetes.protobuf';
/** What a real server lists in a 406: it can produce all three, this fixture never writes protobuf. */
export const SERVED_TYPES = [JSON_TYPE, YAML_TYPE, PROTOBUF_TYPE] as const;

export function parseMediaType(text: string): MediaType {
  const [type = '', ...rest] = text.split(';').map((p) => p.trim());
  const params: Record<string, string> = {};
  let q = 1;
  for (const p of rest) {
    const eq = p.indexOf('=');
    if (eq < 0) continue;
    const key = p.slice(0, eq).trim().toLowerCase();
    const value = p.slice(eq + 1).trim().replace(/^"|"$/g, '');
    if (key === 'q') q = Number(value);
    else params[key] = value;
  }
  return { type: type.toLowerCase(), params, q: Number.isFinite(q) ? q : 0 };
}

/** The Accept header's entries, best first (stable for equal q, as Go's negotiator orders them). */
export function parseAccept(header: string | undefined): MediaType[] {
  if (!header) return [{ type: '*/*', params: {}, q: 1 }];
  return header
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)
    .map(parseMediaType)
    .filter((m) => m.q > 0)
    .sort((a, b) => b.q - a.q);
}

/** What a resource response is rendered as. */
export type Rendering =
  | { form: 'object'; encoding: 'json' | 'yaml' }
  | { form: 'table'; version: 'v1' | 'v1beta1'; includeObject: 'None' | 'Metadata' | 'Object' }
  | { form: 'metadata'; version: 'v1' | 'v1beta1' };

const matchesJson = (m: MediaType): boolean => m.type === JSON_TYPE || m.type === 'application/*' || m.type === '*/*';

/**
 * The first representation the client accepts that the server can produce, or undefined (406).
 * Protobuf entries are skipped: the fixture speaks JSON, as a real server does for a client that
 * lists JSON after protobuf.
 */
export function chooseRendering(header: string | undefined, includeObject: string | null): Rendering | undefined {
  for (const m of parseAccept(header)) {
    const as = m.params.as;
    if (as !== undefined) {
      if (m.type !== JSON_TYPE || m.params.g !== 'meta.k8s.io') continue;
      const version = m.params.v;
      if (version !== 'v1' && version !== 'v1beta1') continue;
      if (as === 'Table') {
        const include = includeObject === 'None' || includeObject === 'Object' ? includeObject : 'Metadata';
        return { form: 'table', version, includeObject: include };
      }
      if (as === 'PartialObjectMetadata' || as === 'PartialObjectMetadataList') return { form: 'metadata', version };
      continue;
    }
    if (matchesJson(m)) return { form: 'object', encoding: 'json' };
    if (m.type === YAML_TYPE) return { form: 'object', encoding: 'yaml' };
  }
  return undefined;
}

/** Whether the header names the aggregated discovery document (apidiscovery.k8s.io v2 or v2beta1). */
export function wantsAggregatedDiscovery(header: string | undefined): 'v2' | 'v2beta1' | undefined {
  for (const m of parseAccept(header)) {
    if (m.params.as === 'APIGroupDiscoveryList' && m.params.g === 'apidiscovery.k8s.io' && m.type === JSON_TYPE) {
      if (m.params.v === 'v2' || m.params.v === 'v2beta1') return m.params.v;
      continue;
    }
    if (matchesJson(m)) return undefined;
  }
  return undefined;
}

/** Whether the client's first acceptable form of `/openapi/v2` is gnostic protobuf (kubectl up to 1.28). */
export function wantsProtobufOpenApiV2(header: string | undefined): boolean {
  for (const m of parseAccept(header)) {
    if (m.type === OPENAPI_V2_PROTOBUF || m.type === OPENAPI_V2_PROTOBUF_ALT) return true;
    if (matchesJson(m) && m.params.as === undefined) return false;
  }
  return false;
}

/** Whether any entry accepts plain JSON (for non-resource documents such as /version). */
export const acceptsJson = (header: string | undefined): boolean => parseAccept(header).some((m) => matchesJson(m) && m.params.as === undefined);
