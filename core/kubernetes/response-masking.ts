import { StringDecoder } from 'node:string_decoder';
import type { MaskingProfile } from '../masking/profile';
import { StreamMasker } from '../masking/stream';
import { err, ok, type Result } from '../result';
import { JsonStreamSplitter, type JsonPieces, type StreamedKey } from './json-stream';
import { listItemKind, maskKubeObject, maskTableRow, maskWatchEvent, type KubeMasking } from './object-masking';
import type { KubeRequestInfo } from './request-info';

/**
 * What the proxy does with a response, decided from the request alone (before anything is sent
 * upstream): pass it through, mask it as JSON (a document, or a watch stream of events) or as text
 * (a pod's log), or refuse the request. Every resource response the agent did not open a channel for is decoded and
 * masked, with or without mask rules: Secrets are masked whatever the policy says, and a Secret can
 * only be found in a response the agent reads. So the agent asks upstream for JSON, never protobuf or
 * YAML, whatever the client asked; Table and metadata-only requests (`as=Table`,
 * `as=PartialObjectMetadataList`) keep their form, in JSON.
 */
export type ResponsePlan =
  | { readonly body: 'pass' }
  /** An upgrade (WebSocket) outside exec, attach, port-forward and proxy: a watch over WebSocket would be frames the masker cannot read. */
  | { readonly body: 'refuse'; readonly message: string }
  | { readonly body: 'document' | 'watch'; readonly accept: string; readonly acceptEncoding: typeof IDENTITY }
  | { readonly body: 'log'; readonly acceptEncoding: typeof IDENTITY };

/**
 * The Accept-Encoding to send upstream for a masked response: the API server gzips large responses for
 * clients that accept it, and the masker reads plain bytes (it refuses an encoded body).
 */
const IDENTITY = 'identity';

/** Subresources whose responses are channels (exec, attach, port-forward) or another server's content (proxy): recorded by the proxy, not masked here. */
const CHANNEL_SUBRESOURCES = new Set(['exec', 'attach', 'portforward', 'proxy']);
/** Most media ranges kept from a client's Accept, and the longest one. */
export const MAX_ACCEPT_RANGES = 8;
export const MAX_ACCEPT_RANGE_CHARS = 256;
const JSON_MEDIA_TYPE = 'application/json';

/** The masking of one request's responses: the caller's rules, and whether the request is for Secrets (core group). */
export function kubeMaskingFor(info: KubeRequestInfo, profile: MaskingProfile | undefined): KubeMasking {
  return { profile, secrets: info.kind === 'resource' && info.group === '' && info.resource === 'secrets' };
}

/** `masksActive`: mask rules apply to the caller (a pod's log is then masked through the detectors). */
export function planResponse(info: KubeRequestInfo, clientAccept: string | undefined, masksActive: boolean): ResponsePlan {
  if (info.kind === 'non-resource' || info.verb === 'proxy') return { body: 'pass' };
  const sub = info.subresource;
  if (sub !== undefined && CHANNEL_SUBRESOURCES.has(sub)) return { body: 'pass' };
  if (info.upgrade) return { body: 'refuse', message: 'twokey: the agent serves watches and reads over plain HTTP, not upgraded connections' };
  if (sub === 'log') return masksActive ? { body: 'log', acceptEncoding: IDENTITY } : { body: 'pass' };
  return { body: info.verb === 'watch' ? 'watch' : 'document', accept: upstreamAccept(clientAccept), acceptEncoding: IDENTITY };
}

/** The media type of a range or Content-Type, lower case, without parameters. */
const mediaTypeOf = (value: string): string => (value.split(';')[0] as string).trim().toLowerCase();

/** Whether a media range asks for a transformed form (`as=Table`, `as=PartialObjectMetadata`). */
const asParameter = (range: string): boolean => range.split(';').slice(1).some((p) => p.trim().toLowerCase().startsWith('as='));

/**
 * The client's JSON media ranges, in its order (so a Table request stays a Table request), then plain
 * JSON if it is not there: protobuf, YAML and wildcards are dropped.
 */
export function upstreamAccept(clientAccept: string | undefined): string {
  const ranges = (clientAccept ?? '')
    .split(',')
    .map((r) => r.trim())
    .filter((r) => r.length > 0 && r.length <= MAX_ACCEPT_RANGE_CHARS && mediaTypeOf(r) === JSON_MEDIA_TYPE)
    .slice(0, MAX_ACCEPT_RANGES);
  if (!ranges.some((r) => !asParameter(r))) ranges.push(JSON_MEDIA_TYPE);
  return ranges.join(',');
}

export type KubeResponseRefusal = { readonly code: 'unmaskable' | 'too-large' | 'malformed'; readonly message: string };

/** A response body masked as it streams: `push` what arrives, `flush` when the stream idles (logs), `end` once. */
export interface ResponseMasker {
  push(chunk: Buffer): Result<string, KubeResponseRefusal>;
  /** Text held back for a value that may continue (a log's look-behind); '' for JSON. */
  flush(): string;
  end(): Result<string, KubeResponseRefusal>;
}

/** The response headers the masker judges by (values as Node gives them). */
export interface ResponseHeaders {
  readonly contentType: string | undefined;
  readonly contentEncoding: string | undefined;
}

/**
 * The masker for a response, or a refusal when its Content-Type is not one the plan can mask (a
 * protobuf answer to a request that asked for JSON is refused, never passed on) or its body is
 * encoded (gzip). A missing Content-Type is read as the plan's own form, which the masker then checks
 * byte by byte.
 */
export function responseMasker(plan: Exclude<ResponsePlan, { body: 'pass' | 'refuse' }>, headers: ResponseHeaders, masking: KubeMasking): Result<ResponseMasker, KubeResponseRefusal> {
  const encoding = headers.contentEncoding?.trim().toLowerCase();
  if (encoding !== undefined && encoding !== '' && encoding !== IDENTITY) {
    return err({ code: 'unmaskable', message: `twokey: the API server answered with ${encoding} content encoding, which the agent cannot mask` });
  }
  const type = headers.contentType === undefined ? undefined : mediaTypeOf(headers.contentType);
  if (type === JSON_MEDIA_TYPE || (type === undefined && plan.body !== 'log')) return ok(jsonMasker(plan.body === 'watch', masking));
  if (plan.body === 'log' && (type === undefined || type === 'text/plain') && masking.profile) return ok(textMasker(masking.profile));
  return err({ code: 'unmaskable', message: `twokey: the API server answered with ${type ?? 'no content type'}, which the agent cannot mask` });
}

function jsonMasker(watch: boolean, masking: KubeMasking): ResponseMasker {
  const pieces: JsonPieces = {
    whole: (doc) => (watch ? `${JSON.stringify(maskWatchEvent(doc, masking))}\n` : JSON.stringify(maskKubeObject(doc, masking))),
    envelope: (env, key) => openCollection(maskKubeObject(env, masking) as Record<string, unknown>, key),
    item: (item, env, key, first) => (first ? '' : ',') + JSON.stringify(key === 'rows' ? maskTableRow(item, masking) : maskKubeObject(item, masking, listItemKind(env.kind))),
    close: () => ']}',
  };
  const splitter = new JsonStreamSplitter(pieces, watch);
  return {
    push: (chunk) => guarded(() => splitter.push(chunk)),
    flush: () => '',
    end: () => guarded(() => splitter.end()),
  };
}

/** `{"kind":"SecretList",...,"items":[` from the masked envelope. */
function openCollection(env: Record<string, unknown>, key: StreamedKey): string {
  const members = JSON.stringify(env).slice(0, -1);
  return `${members}${Object.keys(env).length > 0 ? ',' : ''}${JSON.stringify(key)}:[`;
}

/** Masking a decoded value can still fail (nesting, a value too deep to encode): a refusal, never an exception out of the masker. */
function guarded(step: () => Result<string, KubeResponseRefusal>): Result<string, KubeResponseRefusal> {
  try {
    return step();
  } catch (e) {
    const message = e instanceof Error && e.message.startsWith('twokey: ') ? e.message : 'twokey: the response could not be masked';
    return err({ code: 'malformed', message });
  }
}

function textMasker(profile: MaskingProfile): ResponseMasker {
  const decoder = new StringDecoder('utf8');
  const masker = new StreamMasker(profile.scanner);
  return {
    push: (chunk) => ok(masker.push(decoder.write(chunk))),
    flush: () => masker.flush(),
    end: () => ok(masker.push(decoder.end()) + masker.flush()),
  };
}
