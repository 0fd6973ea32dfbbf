import { notifyAgent, notifyReviewers, recordOutcome, recordPending } from './domain/approvals';
import { postToSlack, showOutcomeInSlack } from './domain/slack';
import { applyPolicyChange } from './domain/policy-changes';
import { getRuntime } from './shared/runtime';

/** Task handlers of state-machines/approval.asl.json; each gets the state's `Payload`. */
interface StepInput {
  readonly requestId: string;
  readonly taskToken?: string;
  readonly outcome?: 'approved' | 'denied' | 'expired' | 'failed';
}

export async function pending(input: StepInput): Promise<{ status: string; kind: string; timeoutSeconds: number }> {
  return recordPending(getRuntime('approval-workflow').deps, input.requestId);
}

export async function notify(input: StepInput): Promise<void> {
  if (!input.taskToken) throw new Error('notify needs the task token');
  const { deps } = getRuntime('approval-workflow');
  await notifyReviewers(deps, input.requestId, input.taskToken);
  await postToSlack(deps, input.requestId);
}

export async function outcome(input: StepInput): Promise<void> {
  const value = input.outcome;
  if (value !== 'approved' && value !== 'denied' && value !== 'expired' && value !== 'failed') throw new Error('unknown outcome');
  const { deps } = getRuntime('approval-workflow');
  await recordOutcome(deps, input.requestId, value);
  const record = deps.slack && (await deps.approvals.get(input.requestId));
  if (record) await showOutcomeInSlack(deps, record);
}

export async function agent(input: StepInput): Promise<void> {
  await notifyAgent(getRuntime('approval-workflow').deps, input.requestId);
}

export async function applyPolicy(input: StepInput): Promise<void> {
  await applyPolicyChange(getRuntime('approval-workflow').deps, input.requestId);
}
