import type { IncomingHttpHeaders } from 'node:http';
import type { Transform } from 'node:stream';
import type { KubeRequestInfo } from '../../core/kubernetes/request-info';
import type { Action } from '../../core/policy/decide';
import type { SessionMaskingHandle } from '../sessions/session-masking';

/** One API request as the agent understood it: its attributes by the API conventions and the policy action. */
export interface ClassifiedRequest {
  readonly info: KubeRequestInfo;
  readonly action: Action;
}

/** How a response is masked for the caller: not at all, by a transform (with the Accept sent upstream), or refused. */
export type ResponseMasking =
  | { readonly kind: 'none' }
  | { readonly kind: 'refuse'; readonly reason: string }
  /** `headers`: what to ask upstream for instead of what the caller asked (JSON, not compressed). */
  | { readonly kind: 'mask'; readonly headers: Readonly<Record<string, string>>; readonly transform: (answer: IncomingHttpHeaders) => Transform | string };

/** The Kubernetes knowledge the proxy applies; pure functions of core/kubernetes bound for the agent. */
export interface KubeRules {
  responseMasking(c: ClassifiedRequest, masking: SessionMaskingHandle, accept: string | undefined): ResponseMasking;
}

/** `verb group/resource[/subresource] namespace/name` (what a reviewer and a recording read first); the path for non-resource requests. */
export function describeRequest(c: ClassifiedRequest): string {
  const k = c.action.kubernetes;
  if (!k) return `${c.info.verb} ${c.info.path}`;
  const resource = `${k.group ? `${k.group}/` : ''}${k.resource}${k.subresource ? `/${k.subresource}` : ''}`;
  const object = k.namespace !== undefined ? `${k.namespace}/${k.name ?? '*'}` : (k.name ?? (k.everyNamespace ? '(all namespaces)' : '*'));
  return `${k.verb} ${resource} ${object}`;
}
