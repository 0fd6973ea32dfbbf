import { planResponse, responseMasker } from '../../core/kubernetes/response-masking';
import type { KubeRules } from './kube-rules';
import { describeRequest } from './kube-rules';
import { MaskingTransform } from './masking-transform';

/** The Kubernetes knowledge of core/kubernetes, bound for the proxy. */
export const coreRules: KubeRules = {
  responseMasking(c, masking, accept) {
    const plan = planResponse(c.info, accept, masking.active);
    if (plan.body === 'pass') return { kind: 'none' };
    const kubeMasking = { profile: masking.profile, secrets: c.info.kind === 'resource' && c.info.group === '' && c.info.resource === 'secrets' };
    return {
      kind: 'mask',
      accept: plan.body === 'log' ? undefined : plan.accept,
      transform(contentType) {
        const masker = responseMasker(plan, contentType, kubeMasking);
        return masker.ok ? new MaskingTransform(masker.value, plan.body === 'log') : masker.error.message;
      },
    };
  },
  reviewText: (c, body) => `${describeRequest(c)}\n\n${body.bytes.toString('utf8')}`,
};
