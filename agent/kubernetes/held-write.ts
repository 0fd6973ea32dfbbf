import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { askApproval, type ApprovalOutcome } from '../approvals/approval-flow';
import { readBounded } from './bounded-body';
import { forward } from './forward';
import { heldBody } from './held-body';
import type { JudgedRequest } from './judge';
import { maskedResponse, type KubeProxyDeps, type Served } from './request-handler';
import { sendStatus } from './status';
import { upstreamHeaders } from './upstream-headers';

/** Largest body a held write may have: it is shown to reviewers whole (or as a diff), and kept until the decision. */
export const MAX_HELD_BODY_BYTES = 512 * 1024;
/** The header `twokey exec` gives a reason in (kubectl sends none); never sent upstream. */
export const REASON_HEADER = 'x-twokey-reason';
/** The longest reason (the tunnel's limit). */
export const MAX_REASON_CHARS = 1024;

/** The live object fetched for a reviewer's diff (read token) may be this large; a larger one is shown without a diff. */
export const MAX_LIVE_OBJECT_BYTES = 1024 * 1024;

const WORDING = {
  noun: 'request',
  reasonHint: 'kubectl cannot send a reason: apply it with twokey exec --target T -f manifest.yaml --reason R',
  tooLargeAdvice: 'apply it with twokey exec --target T -f manifest.yaml, or split it',
} as const;

/**
 * A write the policy sends for approval: its body is read (bounded) and kept; the reviewer sees the
 * verb, object, namespace and the body or its diff against the live object; the agent then sends
 * what the reviewer saw once, on the write token, and returns the API server's answer to kubectl.
 * The caller's connection stays open meanwhile; if it closes, the wait stops and the approval
 * becomes a one-time grant for the identical request.
 */
export async function holdWrite(deps: KubeProxyDeps, judged: JudgedRequest, req: IncomingMessage, res: ServerResponse): Promise<Served> {
  if (judged.decision.kind !== 'approve') throw new Error('holdWrite needs an approve decision');
  if (judged.classified.info.upgrade) {
    sendStatus(res, 'Forbidden', 'twokey: this stream needs approval first: ask for a write window, or run it after approval with the same command');
    return { status: 403, bytes: 0 };
  }
  const body = await readBounded(req, MAX_HELD_BODY_BYTES);
  if (!body.ok) {
    sendStatus(res, body.tooLarge ? 'RequestEntityTooLarge' : 'BadRequest', body.reason);
    return { status: body.tooLarge ? 413 : 400, bytes: 0, summary: body.reason };
  }
  const held = heldBody(req.headers['content-type'], body.value);
  if (!held.ok) {
    sendStatus(res, 'UnsupportedMediaType', held.error);
    return { status: 415, bytes: 0, summary: held.error };
  }
  const { contentType, bytes } = held.value;
  const method = req.method ?? 'GET';
  const live = ['update', 'patch'].includes(judged.classified.info.verb) ? await liveObject(deps, judged) : undefined;
  const review = deps.rules.reviewText(judged.classified, held.value, live, judged.masking);
  if (!review.ok) {
    sendStatus(res, 'BadRequest', review.error);
    return { status: 400, bytes: 0, summary: review.error };
  }
  // The reviewer reads exactly what is sent: method, path with its query, content type, and the body (with a diff).
  const text = `${method} ${judged.url}${contentType ? `\ncontent-type: ${contentType}` : ''}\n${review.value}`;
  const sha256 = createHash('sha256').update(`kubernetes\n${method}\n${judged.url}\n${contentType ?? ''}\n`).update(bytes).digest('hex');
  const abort = new AbortController();
  res.once('close', () => abort.abort());
  const { session } = judged.session;
  const asked = await askApproval(
    { kind: 'statement', target: deps.target, protocol: 'kubernetes', identity: session.identity, text, sha256, class: judged.classified.action.class, decision: judged.decision, reason: reasonOf(req) },
    WORDING,
    { gate: deps.context.approvals, record: (e) => session.record({ e: 'approval', ...e }), signal: abort.signal },
  );
  let outcome: ApprovalOutcome;
  if (asked.kind === 'pending') {
    session.record({ e: 'held', requestId: asked.requestId, review: text });
    outcome = await asked.outcome;
  } else outcome = asked;
  if (res.destroyed) return { status: 499, bytes: 0, summary: 'the caller left while the request was held' };
  if (outcome.kind !== 'run') {
    const message = outcome.kind === 'refused' ? `${outcome.message}${outcome.hint ? ` (${outcome.hint})` : ''}` : 'twokey: a write window is asked for with twokey request-access';
    sendStatus(res, 'Forbidden', message);
    return { status: 403, bytes: 0, summary: message };
  }
  // The reviewer approved a change to the object as it was: if it changed meanwhile, what would run is not what they saw.
  if (live !== undefined && !sameObject(live, await liveObject(deps, judged))) {
    const message = `twokey: ${objectName(judged)} changed after it was reviewed; nothing was sent: run the command again for a fresh review`;
    sendStatus(res, 'Conflict', message);
    return { status: 409, bytes: 0, summary: message };
  }
  const plan = deps.rules.responseMasking(judged.classified, judged.masking, req.headers.accept);
  const headers = upstreamHeaders(req.headers, false);
  delete headers['transfer-encoding'];
  headers['content-length'] = String(bytes.length);
  if (contentType) headers['content-type'] = contentType;
  if (plan.kind === 'mask') Object.assign(headers, plan.headers);
  const forwarded = await forward(deps.upstream, { method, path: judged.url, headers, credential: 'write' }, bytes, res, maskedResponse(plan), outcome.notice);
  return { ...forwarded, summary: outcome.notice };
}

/** Two reads of the live object show the same object: the same resourceVersion (bytes alike when it has none). */
function sameObject(reviewed: Buffer, now: Buffer | undefined): boolean {
  if (now === undefined) return false;
  const a = resourceVersion(reviewed);
  const b = resourceVersion(now);
  return a !== undefined && b !== undefined ? a === b : reviewed.equals(now);
}

function resourceVersion(object: Buffer): string | undefined {
  try {
    const doc = JSON.parse(object.toString('utf8')) as { metadata?: { resourceVersion?: unknown } };
    return typeof doc.metadata?.resourceVersion === 'string' ? doc.metadata.resourceVersion : undefined;
  } catch {
    return undefined;
  }
}

function objectName(judged: JudgedRequest): string {
  const k = judged.classified.action.kubernetes;
  return `${k?.namespace !== undefined ? `${k.namespace}/` : ''}${k?.name ?? judged.url.split('?')[0] ?? ''}`;
}

function reasonOf(req: IncomingMessage): string | undefined {
  const v = req.headers[REASON_HEADER];
  const reason = (Array.isArray(v) ? v[0] : v)?.trim();
  return reason ? reason.slice(0, MAX_REASON_CHARS) : undefined;
}

/** The object as it is now, read with the read token, for the reviewer's diff; undefined when it cannot be read. */
async function liveObject(deps: KubeProxyDeps, judged: JudgedRequest): Promise<Buffer | undefined> {
  const path = judged.url.split('?')[0] ?? judged.url;
  try {
    const req = await deps.upstream.request({ method: 'GET', path, headers: { accept: 'application/json' }, credential: 'read' });
    req.end();
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      req.once('response', resolve);
      req.once('error', reject);
    });
    if (res.statusCode !== 200) {
      res.resume();
      return undefined;
    }
    const body = await readBounded(res, MAX_LIVE_OBJECT_BYTES);
    return body.ok ? body.value : undefined;
  } catch {
    return undefined;
  }
}
