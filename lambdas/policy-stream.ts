import type { DynamoDBStreamEvent } from 'aws-lambda';
import { pushPolicyToAgents } from './domain/policies';
import { toPolicyRecord } from './store/dynamo-stores';
import { getRuntime } from './shared/runtime';

type StreamImage = Record<string, { S?: string; N?: string }>;

function unmarshallFlat(image: StreamImage): Record<string, unknown> {
  return Object.fromEntries(Object.entries(image).map(([k, v]) => [k, v.S ?? v.N]));
}

/** Policies table stream: every new policy version is pushed to every connected agent. */
export async function handler(event: DynamoDBStreamEvent): Promise<void> {
  const rt = getRuntime('policy-stream');
  const inserted = event.Records.filter((r) => r.eventName === 'INSERT' && r.dynamodb?.NewImage);
  const newest = inserted
    .map((r) => toPolicyRecord(unmarshallFlat(r.dynamodb?.NewImage as StreamImage)))
    .sort((a, b) => b.version - a.version)[0];
  if (!newest) return;
  // Agents fetch a full policy per push, so only the newest version in a batch matters.
  const latest = await rt.deps.policies.latest();
  if (latest && latest.version > newest.version) return;
  await pushPolicyToAgents(rt.deps, newest);
}
