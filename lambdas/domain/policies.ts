import { policyForAgent } from '../../core/policy/for-agent';
import { parsePolicy } from '../../core/policy/parse';
import { TUNNEL_PROTOCOL_VERSION, encodeFrame, type ControlMessage } from '../../core/tunnel/messages';
import type { PolicyRecord } from '../store/stores';
import type { ControlPlaneDeps } from './deps';
import { NotFoundError, VersionConflictError } from './errors';

/** Who made a version and how: everything of a policy record but its number, text and time. */
export type PolicyProvenance = Omit<PolicyRecord, 'version' | 'source' | 'updatedAt'>;

/**
 * Stores `source` as the version after `baseVersion`. Throws VersionConflictError, naming the current
 * version, when that is not `baseVersion` or another writer takes the number first.
 */
export async function storeNextVersion(
  deps: Pick<ControlPlaneDeps, 'policies' | 'clock' | 'log'>,
  source: string,
  baseVersion: number,
  provenance: PolicyProvenance,
): Promise<PolicyRecord> {
  const currentVersion = (await deps.policies.latest())?.version ?? 0;
  if (currentVersion !== baseVersion) throw new VersionConflictError(currentVersion);
  const record: PolicyRecord = { ...provenance, version: baseVersion + 1, source, updatedAt: deps.clock().toISOString() };
  try {
    await deps.policies.putVersion(record);
  } catch (e) {
    if (e instanceof VersionConflictError) throw new VersionConflictError((await deps.policies.latest())?.version ?? 0);
    throw e;
  }
  deps.log.info('policy.updated', { version: record.version, by: record.updatedBy, changeRequest: record.changeRequest });
  return record;
}

export async function getPolicy(deps: Pick<ControlPlaneDeps, 'policies'>): Promise<PolicyRecord> {
  const current = await deps.policies.latest();
  if (!current) throw new NotFoundError('no policy has been stored yet');
  return current;
}

let lastParsed: { source: string; result: ReturnType<typeof parsePolicy> } | undefined;
/**
 * A stored policy, parsed. Every session start, approval and agent hello reads the current policy,
 * and parsing a large one costs milliseconds: a warm function instance keeps the last one parsed (the
 * same source parses to the same document; the document is shared, so nothing may change it).
 */
export function parseStoredPolicy(record: PolicyRecord): ReturnType<typeof parsePolicy> {
  if (lastParsed?.source !== record.source) lastParsed = { source: record.source, result: parsePolicy(record.source) };
  return lastParsed.result;
}

/** The `policy` message for one agent, or an `error` message when the policy cannot be sent. */
export function policyMessageFor(record: PolicyRecord | undefined, agent: string): ControlMessage {
  if (!record) return { type: 'error', v: TUNNEL_PROTOCOL_VERSION, code: 'no-policy', message: 'no policy stored yet' };
  const parsed = parseStoredPolicy(record);
  if (!parsed.ok) return { type: 'error', v: TUNNEL_PROTOCOL_VERSION, code: 'policy-invalid', message: 'stored policy is invalid' };
  const message: ControlMessage = {
    type: 'policy',
    v: TUNNEL_PROTOCOL_VERSION,
    version: record.version,
    document: policyForAgent(parsed.value, agent),
  };
  const frame = encodeFrame(message);
  if (!frame.ok) {
    return { type: 'error', v: TUNNEL_PROTOCOL_VERSION, code: 'policy-too-large', message: frame.error.message };
  }
  return message;
}

/** Sends a policy version to every connected agent; connections that are gone are forgotten. */
export async function pushPolicyToAgents(
  deps: Pick<ControlPlaneDeps, 'connections' | 'agents' | 'push' | 'log'>,
  record: PolicyRecord,
): Promise<{ sent: number; gone: number }> {
  const connections = await deps.connections.list();
  let sent = 0;
  let gone = 0;
  await Promise.all(
    connections.map(async (c) => {
      try {
        const result = await deps.push(c.connectionId, policyMessageFor(record, c.agent));
        if (result === 'sent') {
          sent++;
          return;
        }
        gone++;
        await deps.connections.delete(c.connectionId);
        await deps.agents.markDisconnected(c.agent, c.connectionId);
      } catch (e) {
        deps.log.error('policy.push.failed', { agent: c.agent, connectionId: c.connectionId, error: String(e) });
      }
    }),
  );
  deps.log.info('policy.pushed', { version: record.version, sent, gone });
  return { sent, gone };
}
