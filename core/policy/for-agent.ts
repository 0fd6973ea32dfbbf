import { matchesAny } from '../glob';
import type { PolicyDocument } from './schema';

/**
 * The part of a policy an agent needs: its own targets and the rules, blocks and masks that can
 * match them. Reviewer addresses are withheld (agents only need the group names).
 */
export function policyForAgent(policy: PolicyDocument, agent: string): PolicyDocument {
  const targets = policy.targets.filter((t) => t.agent === agent);
  const names = targets.map((t) => t.name);
  const concerns = (globs: readonly string[]): boolean => names.some((n) => matchesAny(globs, n));
  return {
    ...(policy.issuer === undefined ? {} : { issuer: policy.issuer }),
    targets,
    reviewers: Object.fromEntries(Object.keys(policy.reviewers).map((g) => [g, []])),
    rules: policy.rules.filter((r) => concerns(r.targets)),
    blocks: policy.blocks.filter((b) => concerns(b.targets)),
    masks: policy.masks.filter((m) => concerns(m.targets)),
    recording: policy.recording,
  };
}
