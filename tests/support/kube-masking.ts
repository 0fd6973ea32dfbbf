import { MaskingProfile } from '../../core/masking/profile';
import { policySchema } from '../../core/policy/schema';

/** A caller's masks on a Kubernetes target: every detector everywhere, and env vars named like passwords masked in full. */
export const KUBE_TEST_PROFILE = new MaskingProfile(
  policySchema.parse({
    masks: [
      { name: 'detectors', targets: ['cluster'], subjects: { groups: ['g'] } },
      { name: 'env-passwords', targets: ['cluster'], subjects: { groups: ['g'] }, columns: ['*.env.*PASSWORD*'], detectors: [] },
    ],
  }).masks,
  undefined,
);

export const base64 = (s: string): string => Buffer.from(s).toString('base64');
