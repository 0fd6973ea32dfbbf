import type { ListenerFactories, McpEndpointFactory } from './agent';

/* eslint-disable @typescript-eslint/no-require-imports */
/**
 * The protocol listener for each target protocol this agent build serves, each loaded when a target
 * of its protocol starts: an agent carries only the protocols it serves (their libraries hold memory).
 */
export const listenerFactories: ListenerFactories = {
  postgres: (target, context) => (require('./postgres/listener') as typeof import('./postgres/listener')).startPostgresListener(target, context),
  kubernetes: (target, context) => (require('./kubernetes/listener') as typeof import('./kubernetes/listener')).startKubernetesListener(target, context),
  ssh: (target, context) => (require('./ssh/listener') as typeof import('./ssh/listener')).startSshListener(target, context),
};

/** The MCP endpoint over every target's tools, loaded when the configuration asks for it. */
export const mcpEndpoint: McpEndpointFactory = (...args) => (require('./mcp/agent-endpoint') as typeof import('./mcp/agent-endpoint')).startAgentMcp(...args);
