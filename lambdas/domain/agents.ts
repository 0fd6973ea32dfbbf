import { targetsOfAgent } from '../../core/policy/decide';
import { principalKey, type Identity } from '../../core/identity/identity';
import { agentOfKey, keyMatchesHash, newAgentKey } from './agent-keys';
import { parseStoredPolicy } from './policies';
import type { ControlPlaneDeps } from './deps';
import { InvalidRequestError } from './errors';

const AGENT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
/** An agent counts as connected while it has a connection and spoke within this window (3 heartbeats). */
export const AGENT_LIVENESS_SECONDS = 90;

export interface RegisteredAgent {
  readonly name: string;
  /** Shown once; only its hash is stored. */
  readonly key: string;
}

export async function registerAgent(
  deps: Pick<ControlPlaneDeps, 'agents' | 'clock' | 'log'>,
  input: { name: unknown; rotate?: unknown },
  by: Identity,
): Promise<RegisteredAgent> {
  if (typeof input.name !== 'string' || !AGENT_NAME.test(input.name)) {
    throw new InvalidRequestError('name must be 1-63 letters, digits, dot, dash or underscore');
  }
  const rotate = input.rotate === true;
  const { key, hash } = newAgentKey(input.name);
  const existing = rotate ? await deps.agents.get(input.name) : undefined;
  await deps.agents.create(
    {
      name: input.name,
      keyHash: hash,
      createdAt: existing?.createdAt ?? deps.clock().toISOString(),
      createdBy: existing?.createdBy ?? principalKey(by),
      targets: existing?.targets ?? [],
    },
    rotate,
  );
  deps.log.info('agent.registered', { agent: input.name, by: principalKey(by), rotated: rotate });
  return { name: input.name, key };
}

/** Checks an agent key; the reason for a refusal goes to the log, never to the caller. */
export async function authenticateAgent(
  deps: Pick<ControlPlaneDeps, 'agents' | 'log'>,
  key: string | undefined,
): Promise<string | undefined> {
  const name = key === undefined ? undefined : agentOfKey(key);
  if (key === undefined || name === undefined) {
    deps.log.warn('agent.auth.rejected', { reason: key === undefined ? 'no key' : 'malformed key' });
    return undefined;
  }
  const agent = await deps.agents.get(name);
  if (!agent || !keyMatchesHash(key, agent.keyHash)) {
    deps.log.warn('agent.auth.rejected', { agent: name, reason: agent ? 'wrong key' : 'unknown agent' });
    return undefined;
  }
  return name;
}

export interface AgentView {
  readonly name: string;
  readonly connected: boolean;
  readonly targets: readonly string[];
  readonly assignedTargets: readonly string[];
  readonly lastSeenAt: string | null;
  readonly agentVersion: string | null;
}

export async function listAgents(deps: Pick<ControlPlaneDeps, 'agents' | 'policies' | 'clock'>): Promise<AgentView[]> {
  const [agents, policy] = await Promise.all([deps.agents.list(), deps.policies.latest()]);
  const parsed = policy ? parseStoredPolicy(policy) : undefined;
  const now = deps.clock().getTime();
  return agents
    .map((a) => ({
      name: a.name,
      connected:
        a.connectionId !== undefined &&
        a.lastSeenAt !== undefined &&
        now - Date.parse(a.lastSeenAt) <= AGENT_LIVENESS_SECONDS * 1000,
      targets: a.targets,
      assignedTargets: parsed?.ok ? targetsOfAgent(parsed.value, a.name) : [],
      lastSeenAt: a.lastSeenAt ?? null,
      agentVersion: a.agentVersion ?? null,
    }))
    .sort((x, y) => x.name.localeCompare(y.name));
}
