import type { IncomingHttpHeaders } from 'node:http';
import type { Transform } from 'node:stream';
import type { KubernetesRequest } from '../../core/policy/decide';
import type { ActionClass } from '../../core/policy/schema';
import type { SessionMaskingHandle } from '../sessions/session-masking';

/** One API request as the agent understood it (core/kubernetes maps it by the API conventions). */
export interface ClassifiedRequest {
  readonly class: ActionClass;
  readonly request: KubernetesRequest;
  /** Why it is refused whatever the policy says (impersonation headers, a path that cannot be understood), or undefined. */
  readonly refusal?: string;
  /** An upgrade to a stream (exec, attach, port-forward). */
  readonly upgrade: boolean;
}

/** How a response is masked for the caller: not at all, by a transform (with the Accept sent upstream), or refused. */
export type ResponseMasking =
  | { readonly kind: 'none' }
  | { readonly kind: 'refuse'; readonly reason: string }
  | { readonly kind: 'mask'; readonly accept: string; readonly transform: (contentType: string | undefined) => Transform | string };

/** The Kubernetes knowledge the proxy applies; pure functions of core/kubernetes bound for the agent. */
export interface KubeRules {
  classify(method: string, url: string, headers: IncomingHttpHeaders): ClassifiedRequest;
  responseMasking(c: ClassifiedRequest, masking: SessionMaskingHandle, accept: string | undefined): ResponseMasking;
  /** What a reviewer reads for a held write: verb, object, namespace, and the body (a diff against `live` when there is one). */
  reviewText(c: ClassifiedRequest, body: Buffer, contentType: string | undefined, live: Buffer | undefined, masking: SessionMaskingHandle): string;
}
