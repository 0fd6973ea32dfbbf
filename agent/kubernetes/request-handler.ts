import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AgentContext } from '../agent';
import type { ApiSessions } from './api-sessions';
import { ByteLimit, forward, MAX_REQUEST_BODY_BYTES, type Forwarded, type ResponseTransform } from './forward';
import { holdWrite } from './held-write';
import { judgeRequest, type JudgedRequest } from './judge';
import type { KubeRules, ResponseMasking } from './kube-rules';
import type { PendingStreamAsks } from './pending-asks';
import { requestEvent } from './request-event';
import { sendStatus } from './status';
import type { KubeUpstream } from './upstream';
import { upstreamHeaders } from './upstream-headers';

export interface KubeProxyDeps {
  readonly target: string;
  readonly context: AgentContext;
  readonly upstream: KubeUpstream;
  readonly sessions: ApiSessions;
  readonly rules: KubeRules;
  readonly pendingStreams: PendingStreamAsks;
}

/**
 * One plain API request: judged (token, mapping, policy), then refused with a Status, held for
 * approval, or forwarded on the read token with its response masked as it streams. Each request is
 * recorded once, when it ends, with its latency.
 */
export async function handleApiRequest(deps: KubeProxyDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = performance.now();
  const judgement = await judgeRequest(req, deps.target, deps.context, deps.sessions);
  if (!judgement.ok) {
    req.resume();
    sendStatus(res, judgement.refusal.reason, judgement.refusal.message);
    judgement.session?.session.record(requestEvent({ method: req.method, path: judgement.maskedPath }, res.statusCode, started, { summary: judgement.refusal.message }));
    return;
  }
  const judged = judgement.judged;
  const done = judged.session.begin((reason) => {
    sendStatus(res, 'ServiceUnavailable', `twokey: ${reason}`);
    res.destroy();
  });
  try {
    const forwarded = judged.decision.kind === 'approve' ? await holdWrite(deps, judged, req, res) : await forwardRead(deps, judged, req, res);
    judged.session.session.record(requestEvent({ verb: judged.classified.info.verb, method: req.method, path: judged.maskedPath }, forwarded.status, started, { bytes: forwarded.bytes, error: forwarded.error, summary: forwarded.summary }));
  } catch (e) {
    deps.context.log.error('kubernetes.request-failed', { target: deps.target, error: String(e) });
    sendStatus(res, 'InternalError', 'twokey: the agent could not serve this request');
    judged.session.session.record(requestEvent({ verb: judged.classified.info.verb, method: req.method, path: judged.maskedPath }, 500, started, { error: 'internal error' }));
  } finally {
    done();
  }
}

/** What a served request recorded beyond its status. */
export interface Served extends Forwarded {
  readonly summary?: string;
}

/** An allowed request on the read token; its response masked when the caller's masks apply. */
async function forwardRead(deps: KubeProxyDeps, judged: JudgedRequest, req: IncomingMessage, res: ServerResponse): Promise<Served> {
  const plan = deps.rules.responseMasking(judged.classified, judged.masking, req.headers.accept);
  if (plan.kind === 'refuse') {
    req.resume();
    sendStatus(res, 'Forbidden', plan.reason);
    return { status: 403, bytes: 0, summary: plan.reason };
  }
  const headers = upstreamHeaders(req.headers, false);
  if (plan.kind === 'mask') Object.assign(headers, plan.headers);
  const limit = new ByteLimit(MAX_REQUEST_BODY_BYTES);
  const forwarded = await forward(deps.upstream, { method: req.method ?? 'GET', path: judged.url, headers, credential: 'read' }, req.pipe(limit), res, maskedResponse(plan));
  return { ...forwarded, summary: plan.kind === 'mask' ? 'masked' : undefined };
}

/** The response stage a masking plan asks for: none, the masking transform for the answer's content type, or a refusal. */
export function maskedResponse(plan: ResponseMasking): ResponseTransform {
  return (answer) => (plan.kind === 'none' ? undefined : plan.kind === 'refuse' ? plan.reason : plan.transform(answer));
}
