import { kubeMaskingFor, planResponse, responseMasker } from '../../core/kubernetes/response-masking';
import type { KubeRules } from './kube-rules';
import { MaskingTransform } from './masking-transform';

/** The Kubernetes knowledge of core/kubernetes, bound for the proxy. */
export const coreRules: KubeRules = {
  responseMasking(c, masking, accept) {
    const plan = planResponse(c.info, accept, masking.active);
    if (plan.body === 'pass') return { kind: 'none' };
    if (plan.body === 'refuse') return { kind: 'refuse', reason: plan.message };
    const kubeMasking = kubeMaskingFor(c.info, masking.profile);
    return {
      kind: 'mask',
      headers: { ...(plan.body === 'log' ? {} : { accept: plan.accept }), 'accept-encoding': plan.acceptEncoding },
      transform(answer) {
        const masker = responseMasker(plan, { contentType: answer['content-type'], contentEncoding: answer['content-encoding'] }, kubeMasking);
        return masker.ok ? new MaskingTransform(masker.value, plan.body === 'log') : masker.error.message;
      },
    };
  },
};
