import { parse as parseYaml } from 'yaml';
import type { Result } from '../../core/result';

/** Content types of the writes a reviewer can read (the API server's JSON and patch types, and server-side apply's YAML). */
const JSON_TYPES = new Set(['application/json', 'application/merge-patch+json', 'application/strategic-merge-patch+json', 'application/json-patch+json']);
const APPLY_YAML = 'application/apply-patch+yaml';
const PROTOBUF = 'application/vnd.kubernetes.protobuf';

/** A held write's body as the agent will send it: rebuilt from the document it parsed, with that document for the review. */
export interface HeldBody {
  readonly contentType: string | undefined;
  readonly bytes: Buffer;
  readonly doc: unknown;
}

/**
 * The body a reviewer sees and the write token sends, built by the agent from its own parse of the
 * caller's bytes (so that what the API server reads is what the reviewer read: no duplicate keys,
 * odd encodings or trailing data survive). Server-side apply's YAML is sent as JSON (YAML's subset)
 * under the same content type. Anything else (protobuf, which kubectl's typed clients send for
 * `create` and `run`; CBOR) cannot be reviewed without the API's schemas and is refused.
 */
export function heldBody(contentType: string | undefined, raw: Buffer): Result<HeldBody, string> {
  if (raw.length === 0) return { ok: true, value: { contentType, bytes: raw, doc: undefined } };
  const type = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  const text = raw.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(raw)) return { ok: false, error: 'the body is not UTF-8' };
  let doc: unknown;
  try {
    // The YAML parser reads JSON too (JSON is YAML 1.2) and, unlike JSON.parse, refuses duplicate keys.
    if (JSON_TYPES.has(type)) doc = parseYaml(text, { uniqueKeys: true, schema: 'json', strict: true });
    else if (type === APPLY_YAML) doc = parseYaml(text, { uniqueKeys: true, schema: 'core', strict: true });
    else if (type === PROTOBUF) return { ok: false, error: `this write is encoded as protobuf (kubectl create and run send it so), which a reviewer cannot read: write it as a manifest and use kubectl apply -f (or twokey exec -f)` };
    else return { ok: false, error: `a held write must be JSON or server-side apply YAML to be reviewed (not ${type || 'without a content type'})` };
  } catch (e) {
    return { ok: false, error: `the body cannot be read: ${(e instanceof Error ? e.message : String(e)).split('\n')[0] ?? ''}` };
  }
  return { ok: true, value: { contentType: type, bytes: Buffer.from(JSON.stringify(doc)), doc } };
}
