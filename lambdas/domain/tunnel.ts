import { createHmac } from 'node:crypto';
import { targetsOfAgent } from '../../core/policy/decide';
import { TUNNEL_PROTOCOL_VERSION, decodeAgentMessage, type AgentMessage, type ControlMessage } from '../../core/tunnel/messages';
import type { AuthenticatedAgent } from './agents';
import type { ControlPlaneDeps } from './deps';
import { intakeApproval, undeliveredDecisions } from './approvals';
import { policyMessageFor, parseStoredPolicy } from './policies';
import { endSession, presignChunk, startSession } from './sessions';
import { sshKeysMessages } from './ssh-keys';

/**
 * Records a connection the authorizer admitted, then checks that the key it matched is still the
 * agent's: a key rotated or removed in between is refused here, and a rotation after this check finds
 * the record and closes the connection. Either way no connection outlives its key. False: refused.
 */
export async function onAgentConnect(deps: Pick<ControlPlaneDeps, 'agents' | 'connections' | 'clock' | 'log'>, connectionId: string, admitted: AuthenticatedAgent): Promise<boolean> {
  const agent = admitted.name;
  const at = deps.clock().toISOString();
  await deps.connections.put({ connectionId, agent, connectedAt: at });
  if ((await deps.agents.get(agent))?.keyHash !== admitted.keyHash) {
    await deps.connections.delete(connectionId);
    deps.log.warn('agent.connect.refused', { agent, connectionId, reason: 'key replaced since the authorizer checked it' });
    return false;
  }
  await deps.agents.markConnected(agent, connectionId, at);
  deps.log.info('agent.connected', { agent, connectionId });
  return true;
}

export async function onAgentDisconnect(deps: Pick<ControlPlaneDeps, 'agents' | 'connections' | 'log'>, connectionId: string): Promise<void> {
  const connection = await deps.connections.get(connectionId);
  await deps.connections.delete(connectionId);
  if (connection) await deps.agents.markDisconnected(connection.agent, connectionId);
  deps.log.info('agent.disconnected', { agent: connection?.agent, connectionId });
}

/**
 * Handles one frame from an agent and sends the replies. A frame that does not decode is answered
 * with an `error` message and logged; the connection stays open.
 */
export async function onAgentMessage(deps: ControlPlaneDeps, connectionId: string, frame: string): Promise<void> {
  const connection = await deps.connections.get(connectionId);
  if (!connection) {
    deps.log.warn('tunnel.unknown-connection', { connectionId });
    return;
  }
  const decoded = decodeAgentMessage(frame);
  if (!decoded.ok) {
    deps.log.warn('tunnel.bad-frame', { agent: connection.agent, reason: decoded.error.message });
    await deps.push(connectionId, { type: 'error', v: TUNNEL_PROTOCOL_VERSION, code: decoded.error.code, message: decoded.error.message });
    return;
  }
  for (const reply of await replyTo(deps, connection.agent, decoded.value)) {
    await deps.push(connectionId, reply);
  }
}

async function replyTo(deps: ControlPlaneDeps, agent: string, message: AgentMessage): Promise<ControlMessage[]> {
  const at = deps.clock().toISOString();
  switch (message.type) {
    case 'hello': {
      const record = await deps.policies.latest();
      const parsed = record ? parseStoredPolicy(record) : undefined;
      const assigned = new Set(parsed?.ok ? targetsOfAgent(parsed.value, agent) : []);
      const accepted = message.targets.filter((t) => assigned.has(t));
      const rejected = message.targets
        .filter((t) => !assigned.has(t))
        .map((target) => ({ target, reason: 'the policy does not assign this target to this agent' }));
      await deps.agents.recordHello(agent, accepted, message.agentVersion, at);
      if (rejected.length > 0) deps.log.warn('agent.targets.rejected', { agent, rejected: rejected.map((r) => r.target) });
      return [
        { type: 'hello.ok', v: TUNNEL_PROTOCOL_VERSION, agent, accepted, rejected, maskingKey: await maskingKeyOf(deps) },
        policyMessageFor(record, agent),
        ...(await sshKeysMessages(deps)),
        ...(await undeliveredDecisions(deps, agent)),
      ];
    }
    case 'policy.get':
      return [policyMessageFor(await deps.policies.latest(), agent)];
    case 'heartbeat': {
      await deps.agents.touch(agent, at);
      const [latest, sshKeysChangedAt] = await Promise.all([deps.policies.latest(), deps.sshKeys.changedAt()]);
      return [{ type: 'heartbeat.ok', v: TUNNEL_PROTOCOL_VERSION, sentAt: message.sentAt, policyVersion: latest?.version, sshKeysChangedAt }];
    }
    case 'ssh.keys.get':
      return sshKeysMessages(deps);
    case 'approval.request': {
      const { type: _type, v: _v, ...ask } = message;
      return [await intakeApproval(deps, agent, ask)];
    }
    case 'session.start':
      return startSession(deps, agent, message);
    case 'recording.presign':
      return presignChunk(deps, agent, message);
    case 'session.end':
      return endSession(deps, agent, message);
    case 'approval.ack': {
      const record = await deps.approvals.get(message.requestId);
      if (record?.agent === agent) await deps.approvals.markDelivered(message.requestId);
      return [];
    }
  }
}

/** The `hash` mask key: derived from the link key, so that a deployment has one secret to keep and rotate. */
async function maskingKeyOf(deps: ControlPlaneDeps): Promise<string> {
  return createHmac('sha256', await deps.linkKey()).update('twokey masking key v1').digest('base64');
}
