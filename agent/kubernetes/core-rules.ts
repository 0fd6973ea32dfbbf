import type { KubeRules } from './kube-rules';
import { describeRequest } from './kube-rules';

/** The Kubernetes knowledge of core/kubernetes, bound for the proxy. */
export const coreRules: KubeRules = {
  responseMasking: (_c, masking) => (masking.active ? { kind: 'refuse', reason: 'masked Kubernetes responses are not served yet' } : { kind: 'none' }),
  reviewText: (c, body) => `${describeRequest(c)}\n\n${body.bytes.toString('utf8')}`,
};
