import type { ListenerFactories, McpEndpointFactory } from './agent';
import { startKubernetesListener } from './kubernetes/listener';
import { startAgentMcp } from './mcp/agent-endpoint';
import { startPostgresListener } from './postgres/listener';
import { startSshListener } from './ssh/listener';

/** The protocol listener for each target protocol this agent build serves. */
export const listenerFactories: ListenerFactories = {
  postgres: (target, context) => startPostgresListener(target, context),
  ssh: (target, context) => startSshListener(target, context),
  kubernetes: (target, context) => startKubernetesListener(target, context),
};

/** The MCP endpoint over every target's tools. */
export const mcpEndpoint: McpEndpointFactory = startAgentMcp;
