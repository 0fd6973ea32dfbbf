import type { AgentContext, ProtocolListener } from '../agent';
import type { AgentConfig, McpEndpointConfig } from '../config';
import { pinnedDatabase } from '../config';
import { loadParser, StatementClassifier } from '../postgres/classify/classifier';
import { startMcpEndpoint, type McpEndpoint } from './endpoint';
import { listenerAddress } from './postgres/caller-connection';
import { HeldExecutions } from './postgres/held-executions';
import { postgresToolset } from './postgres/toolset';
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
  const toolsets: McpToolset[] = [
    postgresToolset({
      decide: (identity, target, action) => context.decide(identity, target, action),
      masking: context,
      classifier: new StatementClassifier(),
      held: new HeldExecutions(),
      channels: context.channels,
      addressOf(target) {
        const t = config.targets.find((x) => x.name === target);
        const endpoint = endpointOf(target);
        return t?.protocol === 'postgres' && endpoint ? listenerAddress(endpoint, pinnedDatabase(t), t.tls !== undefined) : undefined;
      },
    }),
  ];
  const registry = new ToolRegistry(toolsets, () => config.targets);
  return startMcpEndpoint(mcp, context, registry, config.identity.issuers.map((i) => i.issuer));
}
