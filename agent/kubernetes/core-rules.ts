import { kubeMaskingFor, planResponse, responseMasker } from '../../core/kubernetes/response-masking';
import { reviewWrite } from '../../core/kubernetes/write-review';
import type { KubeRules } from './kube-rules';
import { describeRequest } from './kube-rules';
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
  reviewText(c, body, live, masking) {
    // A write outside the resource API (only reachable when a policy approves `unknown`) carries no objects: its body through the detectors.
    if (c.info.kind !== 'resource') return { ok: true, value: `${describeRequest(c)}\n\n${masking.value(body.bytes.toString('utf8'))}` };
    const review = reviewWrite({ info: c.info, contentType: body.contentType, body: body.bytes, live: parsedLive(live) }, kubeMaskingFor(c.info, masking.profile));
    if (!review.ok) return { ok: false, error: review.error.message };
    const { title, notes, diff } = review.value;
    return { ok: true, value: [title, ...notes.map((n) => `note: ${n}`), '', review.value.body, ...(diff ? [diff] : [])].join('\n') };
  },
};

function parsedLive(live: Buffer | undefined): unknown {
  if (live === undefined) return undefined;
  try {
    return JSON.parse(live.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}
