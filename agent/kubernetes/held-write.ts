import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { MAX_REASON_CHARS } from '../../core/tunnel/messages';
import { REASON_HEADER } from '../../core/kubernetes/request-info';
import { kubeMaskingFor } from '../../core/kubernetes/response-masking';
import { PROTOBUF_MEDIA_TYPE } from '../../core/kubernetes/protobuf-object';
import { reviewWrite, type ReviewRefusal } from '../../core/kubernetes/write-review';
import { askApproval, type ApprovalOutcome } from '../approvals/approval-flow';
import { channelText } from '../sessions/channels';
import { readBounded } from '../net/bounded-body';
import { forward } from './forward';
import type { JudgedRequest } from './judge';
import { maskedResponse, type KubeProxyDeps, type Served } from './request-handler';
import { sendStatus, STATUS_REASONS, type StatusReason } from './status';
import { upstreamHeaders } from './upstream-headers';

/** Largest body a held write may have: it is shown to reviewers whole (or as a diff), and kept until the decision. */
export const MAX_HELD_BODY_BYTES = 512 * 1024;

/** The live object fetched for a reviewer's diff (read token) may be this large; a larger one is shown without a diff. */
export const MAX_LIVE_OBJECT_BYTES = 1024 * 1024;

/** Writes whose reviewer sees a diff from the object as it is (a create makes a new one). */
const LIVE_VERBS = new Set(['update', 'patch', 'delete']);
const REVIEW_REFUSAL_STATUS: Record<ReviewRefusal['code'], StatusReason> = { 'too-large': 'RequestEntityTooLarge', unreviewable: 'UnsupportedMediaType', malformed: 'BadRequest' };

const WORDING = {
  noun: 'request',
  reasonHint: 'kubectl cannot send a reason: apply it with twokey exec --target T -f manifest.yaml --reason R',
  tooLargeAdvice: 'apply it with twokey exec --target T -f manifest.yaml, or split it',
} as const;

/**
 * A write the policy sends for approval: its body is read (bounded) and reviewed by core/kubernetes
 * (decoded, masked, diffed against the live object read with the read token); the reviewer sees the
 * method, path, verb, object, namespace, body and diff; on approval the agent sends the body it
 * decoded and showed (re-encoded, never the caller's bytes) once, on the write token, and returns the
 * API server's answer to kubectl.
 * The caller's connection stays open meanwhile; if it closes, the wait stops and the approval
 * becomes a one-time grant for the identical request.
 */
export async function holdWrite(deps: KubeProxyDeps, judged: JudgedRequest, req: IncomingMessage, res: ServerResponse): Promise<Served> {
  if (judged.decision.kind !== 'approve') throw new Error('holdWrite needs an approve decision');
  const info = judged.classified.info;
  if (info.kind !== 'resource') {
    req.resume();
    sendStatus(res, 'Forbidden', 'twokey: only requests on API resources can be shown to a reviewer');
    return { status: 403, bytes: 0 };
  }
  const body = await readBounded(req, MAX_HELD_BODY_BYTES);
  if (!body.ok) {
    const reason = body.tooLarge ? 'RequestEntityTooLarge' : 'BadRequest';
    sendStatus(res, reason, body.reason);
    return { status: STATUS_REASONS[reason], bytes: 0, summary: body.reason };
  }
  const method = req.method ?? 'GET';
  const live = LIVE_VERBS.has(info.verb) ? await liveObject(deps, judged) : undefined;
  const reviewed = reviewWrite({ info, contentType: req.headers['content-type'], body: body.value, live }, kubeMaskingFor(info, judged.masking.profile));
  if (!reviewed.ok) {
    const { code, message } = reviewed.error;
    const protobuf = (req.headers['content-type'] ?? '').startsWith(PROTOBUF_MEDIA_TYPE);
    const shown = protobuf ? `${message}: kubectl create sends protobuf; write the object as a manifest and use kubectl apply -f (or twokey exec -f)` : message;
    const reason = REVIEW_REFUSAL_STATUS[code];
    sendStatus(res, reason, shown);
    return { status: STATUS_REASONS[reason], bytes: 0, summary: shown };
  }
  const review = reviewed.value;
  const sent = review.forward;
  // The reviewer reads exactly what is sent: method, path with its query, content type and body (masked), and the diff.
  const text = [`${method} ${judged.url}`, review.title, ...review.notes.map((n) => `note: ${n}`), review.body && `body${sent ? ` (${sent.contentType})` : ''}:\n${review.body}`, review.diff]
    .filter(Boolean)
    .join('\n');
  const bytes = Buffer.from(sent?.body ?? '');
  const contentType = sent?.contentType;
  const sha256 = createHash('sha256').update(`kubernetes\n${method}\n${judged.url}\n${contentType ?? ''}\n`).update(bytes).digest('hex');
  const abort = new AbortController();
  res.once('close', () => abort.abort());
  const { session } = judged.session;
  const asked = await askApproval(
    { kind: 'statement', target: deps.target, protocol: 'kubernetes', identity: session.identity, via: judged.channel && channelText(judged.channel), text, sha256, class: judged.classified.action.class, decision: judged.decision, reason: reasonOf(req) },
    WORDING,
    { gate: deps.context.approvals, record: (e) => session.record({ e: 'approval', ...e }), signal: abort.signal },
  );
  let outcome: ApprovalOutcome;
  if (asked.kind === 'pending') {
    session.record({ e: 'held', requestId: asked.requestId, review: text });
    const { groups, timeoutSeconds } = judged.decision.approval;
    judged.channel?.onHeld?.({ requestId: asked.requestId, groups, timeoutSeconds });
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
    const message = `twokey: ${info.namespace !== undefined ? `${info.namespace}/` : ''}${info.name ?? info.path} changed after it was reviewed; nothing was sent: run the command again for a fresh review`;
    sendStatus(res, 'Conflict', message);
    return { status: 409, bytes: 0, summary: message };
  }
  const plan = deps.rules.responseMasking(judged.classified, judged.masking, req.headers.accept);
  const headers = upstreamHeaders(req.headers, false);
  delete headers['transfer-encoding'];
  delete headers['content-type'];
  headers['content-length'] = String(bytes.length);
  if (contentType) headers['content-type'] = contentType;
  if (plan.kind === 'mask') Object.assign(headers, plan.headers);
  const forwarded = await forward(deps.upstream, { method, path: judged.url, headers, credential: 'write' }, bytes, res, maskedResponse(plan), outcome.notice);
  return { ...forwarded, summary: outcome.notice };
}

/** Two reads of the live object show the same object: the same resourceVersion (the same document when it has none). */
function sameObject(reviewed: unknown, now: unknown): boolean {
  const a = resourceVersion(reviewed);
  const b = resourceVersion(now);
  return a !== undefined || b !== undefined ? a === b : JSON.stringify(reviewed) === JSON.stringify(now);
}

function resourceVersion(object: unknown): string | undefined {
  const metadata = typeof object === 'object' && object !== null ? (object as { metadata?: unknown }).metadata : undefined;
  const version = typeof metadata === 'object' && metadata !== null ? (metadata as { resourceVersion?: unknown }).resourceVersion : undefined;
  return typeof version === 'string' ? version : undefined;
}

function reasonOf(req: IncomingMessage): string | undefined {
  const v = req.headers[REASON_HEADER];
  const reason = (Array.isArray(v) ? v[0] : v)?.trim();
  return reason ? reason.slice(0, MAX_REASON_CHARS) : undefined;
}

/** The object as it is now, read with the read token, for the reviewer's diff; undefined when it cannot be read. */
async function liveObject(deps: KubeProxyDeps, judged: JudgedRequest): Promise<unknown> {
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
    return body.ok ? (JSON.parse(body.value.toString('utf8')) as unknown) : undefined;
  } catch {
    return undefined;
  }
}
