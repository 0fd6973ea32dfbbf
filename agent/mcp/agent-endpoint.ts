import type { AgentContext, ProtocolListener } from '../agent';
import type { AgentConfig, McpEndpointConfig } from '../config';
import { pinnedDatabase } from '../config';
import { loadParser, StatementClassifier } from '../postgres/classify/classifier';
import { startMcpEndpoint, type McpEndpoint } from './endpoint';
import { endpointAddress, listenerAddress } from './postgres/caller-connection';
import { HeldExecutions } from './held-executions';
import { postgresToolset } from './postgres/toolset';
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
    sshToolset({
      decide,
      held,
      channels: context.channels,
      addressOf(target) {
        const endpoint = config.targets.find((x) => x.name === target)?.protocol === 'ssh' ? endpointOf(target) : undefined;
        return endpoint ? endpointAddress(endpoint) : undefined;
      },
    }),
  ];
  const registry = new ToolRegistry(toolsets, () => config.targets);
  return startMcpEndpoint(mcp, context, registry, config.identity.issuers.map((i) => i.issuer));
}
