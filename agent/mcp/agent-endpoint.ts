import type { AgentContext, ProtocolListener } from '../agent';
import type { AgentConfig, McpEndpointConfig } from '../config';
import { pinnedDatabase } from '../config';
import { loadParser, StatementClassifier } from '../postgres/classify/classifier';
import { startMcpEndpoint, type McpEndpoint } from './endpoint';
import { endpointAddress, listenerAddress } from './postgres/caller-connection';
import { HeldExecutions } from './held-executions';
import { postgresToolset } from './postgres/toolset';
import { kubernetesToolset } from './kubernetes/toolset';
import { sshToolset } from './ssh/toolset';
import { ToolRegistry, type McpToolset } from './tool-registry';

/** What the MCP endpoint serves: the agent's targets and the listeners they got. */
export interface ServedTargets {
  readonly config: AgentConfig;
  readonly listeners: readonly ProtocolListener[];
}

/**
 * The MCP endpoint over this agent's targets, with one toolset per protocol. A protocol's tools go in
 * one module (agent/mcp/<protocol>/toolset.ts) added to the list here.
 */
export async function startAgentMcp(mcp: McpEndpointConfig, context: AgentContext, served: ServedTargets): Promise<McpEndpoint> {
  const { config, listeners } = served;
  const endpointOf = (target: string): string | undefined => listeners.find((l) => l.target === target)?.endpoint;
  await loadParser();
  const held = new HeldExecutions();
  /** The agent's own listener for a target of this protocol, as this process dials it. */
  const listenerOf = (target: string, protocol: 'ssh' | 'kubernetes'): { host: string; port: number } | undefined => {
    const endpoint = config.targets.find((x) => x.name === target)?.protocol === protocol ? endpointOf(target) : undefined;
    return endpoint ? endpointAddress(endpoint) : undefined;
  };
  const decide: AgentContext['decide'] = (identity, target, action) => context.decide(identity, target, action);
  const toolsets: McpToolset[] = [
    postgresToolset({
      decide,
      masking: context,
      classifier: new StatementClassifier(),
      held,
      channels: context.channels,
      addressOf(target) {
        const t = config.targets.find((x) => x.name === target);
        const endpoint = endpointOf(target);
        return t?.protocol === 'postgres' && endpoint ? listenerAddress(endpoint, pinnedDatabase(t), t.tls !== undefined) : undefined;
      },
    }),
    sshToolset({ decide, held, channels: context.channels, addressOf: (target) => listenerOf(target, 'ssh') }),
    kubernetesToolset({ decide, held, channels: context.channels, addressOf: (target) => listenerOf(target, 'kubernetes') }),
  ];
  const registry = new ToolRegistry(toolsets, () => config.targets);
  return startMcpEndpoint(mcp, context, registry, config.identity.issuers.map((i) => i.issuer));
}
