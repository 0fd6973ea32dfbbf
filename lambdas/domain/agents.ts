import { targetsOfAgent } from '../../core/policy/decide';
import { principalKey, type Identity } from '../../core/identity/identity';
import { agentOfKey, keyMatchesHash, newAgentKey } from './agent-keys';
import { parseStoredPolicy } from './policies';
import type { ControlPlaneDeps } from './deps';
import { InvalidRequestError, NotFoundError } from './errors';
import { DEFAULT_PAGE_ITEMS } from '../store/page-token';

const AGENT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
/** An agent counts as connected while it has a connection and spoke within this window (3 heartbeats). */
export const AGENT_LIVENESS_SECONDS = 90;

export interface RegisteredAgent {
  readonly name: string;
  /** Shown once; only its hash is stored. */
  readonly key: string;
  /** Tunnel connections closed because they were opened with the key this one replaces. */
  readonly connectionsClosed: number;
}

export async function registerAgent(
  deps: Pick<ControlPlaneDeps, 'agents' | 'connections' | 'disconnect' | 'clock' | 'log'>,
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
  const closed = rotate ? await closeConnectionsOf(deps, input.name) : 0;
  deps.log.info('agent.registered', { agent: input.name, by: principalKey(by), rotated: rotate, connectionsClosed: closed });
  return { name: input.name, key, connectionsClosed: closed };
}

/**
 * Removes an agent: its key stops authenticating at once and its open tunnel connections are closed.
 * Deleting again closes what a failed first attempt left open (404 once nothing is left).
 */
export async function deleteAgent(deps: Pick<ControlPlaneDeps, 'agents' | 'connections' | 'disconnect' | 'log'>, name: string, by: Identity): Promise<void> {
  if (!AGENT_NAME.test(name)) throw new InvalidRequestError('name must be 1-63 letters, digits, dot, dash or underscore');
  const existed = await deps.agents.delete(name);
  const closed = await closeConnectionsOf(deps, name);
  if (!existed && closed === 0) throw new NotFoundError(`agent ${name} is not registered`);
  deps.log.info('agent.deleted', { agent: name, by: principalKey(by), connectionsClosed: closed });
}

/**
 * Closes every tunnel connection of an agent whose key was replaced or removed: they were admitted with
 * a key that no longer counts, and API Gateway checks a key only at $connect. The key was changed
 * first, so the agent's reconnect with the old key is refused. A connection that cannot be closed
 * keeps its record, so that rotating or deleting again finds it, and the call fails after trying all.
 */
async function closeConnectionsOf(deps: Pick<ControlPlaneDeps, 'agents' | 'connections' | 'disconnect' | 'log'>, agent: string): Promise<number> {
  // A consistent scan, not the byAgent index: a GSI is read eventually, and would miss a connection
  // opened just before the rotation.
  const open = (await deps.connections.list()).filter((c) => c.agent === agent);
  let failed: unknown;
  for (const c of open) {
    try {
      await deps.disconnect(c.connectionId);
      await deps.connections.delete(c.connectionId);
      await deps.agents.markDisconnected(agent, c.connectionId);
    } catch (e) {
      deps.log.error('agent.connection.close-failed', { agent, connectionId: c.connectionId, error: String(e) });
      failed ??= e;
    }
  }
  if (failed !== undefined) throw new Error(`could not close every connection of agent ${agent}`, { cause: failed });
  return open.length;
}

/** An agent whose key checked out, and which stored key it matched (for the check at $connect). */
export interface AuthenticatedAgent {
  readonly name: string;
  readonly keyHash: string;
}

/** Checks an agent key; the reason for a refusal goes to the log, never to the caller. */
export async function authenticateAgent(
  deps: Pick<ControlPlaneDeps, 'agents' | 'log'>,
  key: string | undefined,
): Promise<AuthenticatedAgent | undefined> {
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
  return { name, keyHash: agent.keyHash };
}

export interface AgentView {
  readonly name: string;
  readonly connected: boolean;
  readonly targets: readonly string[];
  readonly assignedTargets: readonly string[];
  readonly lastSeenAt: string | null;
  readonly agentVersion: string | null;
}

export async function listAgents(deps: Pick<ControlPlaneDeps, 'agents' | 'policies' | 'clock'>, page: { limit?: number; next?: string } = {}): Promise<{ agents: AgentView[]; next?: string }> {
  const [{ agents, next }, policy] = await Promise.all([deps.agents.list({ limit: page.limit ?? DEFAULT_PAGE_ITEMS, next: page.next }), deps.policies.latest()]);
  const parsed = policy ? parseStoredPolicy(policy) : undefined;
  const now = deps.clock().getTime();
  const views = agents
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
  return { agents: views, ...(next ? { next } : {}) };
}
