import type { IncomingMessage } from 'node:http';
import { kubernetesAction } from '../../core/kubernetes/classify';
import { requestInfo, type KubeRequestRefusal } from '../../core/kubernetes/request-info';
import type { Decision } from '../../core/policy/decide';
import type { AgentContext } from '../agent';
import type { CallerChannel } from '../sessions/channels';
import { sessionMaskingFor, type SessionMaskingHandle } from '../sessions/session-masking';
import { MAX_REQUESTS_IN_FLIGHT_PER_CALLER, type ApiSession, type ApiSessions } from './api-sessions';
import type { ClassifiedRequest } from './kube-rules';
import type { StatusReason } from './status';

/** Longest request target (path and query) the agent reads; the API's own paths are far shorter. */
export const MAX_URL_BYTES = 8 * 1024;
/** Longest bearer token accepted (an OIDC JWT with many groups is a few KB). */
export const MAX_TOKEN_BYTES = 16 * 1024;

/** A request the agent will serve: who asked, in which session, what it is, what the policy said. */
export interface JudgedRequest {
  readonly session: ApiSession;
  readonly classified: ClassifiedRequest;
  readonly decision: Decision;
  readonly masking: SessionMaskingHandle;
  /** The path and query sent upstream: rebuilt from what the agent read, never the caller's bytes. */
  readonly url: string;
  /** The url as recordings show it (masked). */
  readonly maskedPath: string;
  /** How the caller came when the agent opened the connection for them (MCP). */
  readonly channel: CallerChannel | undefined;
}

/** A request refused before it reached the API server, as a Status. */
export interface Refusal {
  readonly reason: StatusReason;
  readonly message: string;
}

/** A refusal after the caller was known carries their session and the path masked for the recording. */
export type Judgement = { readonly ok: true; readonly judged: JudgedRequest } | { readonly ok: false; readonly refusal: Refusal; readonly session?: ApiSession; readonly maskedPath?: string };

const REFUSAL_STATUS: Record<KubeRequestRefusal['code'], StatusReason> = { 'too-large': 'RequestEntityTooLarge', malformed: 'BadRequest', impersonation: 'Forbidden' };

const BEARER = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/;

/**
 * The first half of every request (plain or upgrade): the caller's OIDC token as a bearer token,
 * their session, the request mapped by the API conventions, and the policy's decision, recorded.
 * Everything refused here is answered as a Status and never reaches the API server.
 */
export async function judgeRequest(req: IncomingMessage, target: string, context: AgentContext, sessions: ApiSessions): Promise<Judgement> {
  const url = req.url ?? '';
  if (Buffer.byteLength(url) > MAX_URL_BYTES) return refuse('BadRequest', `the request path is over ${MAX_URL_BYTES} bytes`);
  if (!url.startsWith('/')) return refuse('BadRequest', 'the request path must start with /');
  const authorization = req.headers.authorization ?? '';
  if (authorization.length > MAX_TOKEN_BYTES) return refuse('Unauthorized', 'the bearer token is too long');
  const token = BEARER.exec(authorization)?.[1];
  if (!token) return refuse('Unauthorized', 'send your twokey token as a bearer token (a kubeconfig user with `twokey token --kube` as its exec plugin)');
  const verified = await context.verifyToken(token);
  if (!verified.ok) return refuse('Unauthorized', `the token was rejected (${verified.error.reason}); get a fresh one with twokey login`);
  const identity = verified.value;
  const opened = sessions.open(identity, `${req.socket.remoteAddress ?? ''}:${req.socket.remotePort ?? ''}`);
  if (!opened.ok) return refuse(opened.refusal.kind === 'too-many-sessions' ? 'TooManyRequests' : 'ServiceUnavailable', opened.refusal.message);
  const session = opened.session;
  if (session.busy) return refuse('TooManyRequests', `you have ${MAX_REQUESTS_IN_FLIGHT_PER_CALLER} requests in flight on ${target} (watches and follows count): end some first`);
  const masking = sessionMaskingFor(context, identity, target);
  const maskedPath = masking.value(url);
  const text = `${req.method ?? ''} ${maskedPath}`;
  const at = url.indexOf('?');
  const info = requestInfo(req.method ?? '', at < 0 ? url : url.slice(0, at), at < 0 ? '' : url.slice(at + 1), req.headers);
  if (!info.ok) {
    session.session.record({ e: 'decision', text, class: 'unknown', decision: 'deny', rule: undefined, reason: info.error.message });
    return { ok: false, refusal: { reason: REFUSAL_STATUS[info.error.code], message: info.error.message }, session, maskedPath };
  }
  const classified = { info: info.value, action: kubernetesAction(info.value) };
  const channel = context.channels.of(req.socket.remoteAddress, req.socket.remotePort);
  const decision = context.decide(identity, target, { ...classified.action, via: channel?.via });
  session.session.record({ e: 'decision', text, class: classified.action.class, decision: decision.kind, rule: decision.rule, reason: decision.kind === 'deny' ? decision.reason : undefined });
  if (decision.kind === 'deny') return { ok: false, refusal: { reason: 'Forbidden', message: `twokey: ${decision.reason}` }, session, maskedPath };
  // What goes upstream is the request as the agent read it (decoded segments and parameters encoded again), never the caller's bytes.
  const query = info.value.query.toString();
  const canonical = `${info.value.path}${query ? `?${query}` : ''}`;
  return { ok: true, judged: { session, classified, decision, masking, url: canonical, maskedPath: canonical === url ? maskedPath : masking.value(canonical), channel } };
}

function refuse(reason: StatusReason, message: string): Judgement {
  return { ok: false, refusal: { reason, message: `twokey: ${message}` } };
}
