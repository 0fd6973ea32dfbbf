import { notifyAgent, notifyReviewers, recordOutcome, recordPending } from './domain/approvals';
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
  await notifyReviewers(getRuntime('approval-workflow').deps, input.requestId, input.taskToken);
}

export async function outcome(input: StepInput): Promise<void> {
  const value = input.outcome;
  if (value !== 'approved' && value !== 'denied' && value !== 'expired' && value !== 'failed') throw new Error('unknown outcome');
  await recordOutcome(getRuntime('approval-workflow').deps, input.requestId, value);
}

export async function agent(input: StepInput): Promise<void> {
  await notifyAgent(getRuntime('approval-workflow').deps, input.requestId);
}

export async function applyPolicy(input: StepInput): Promise<void> {
  await applyPolicyChange(getRuntime('approval-workflow').deps, input.requestId);
}
