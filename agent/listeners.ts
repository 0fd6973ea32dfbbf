import type { ListenerFactories, McpEndpointFactory } from './agent';

// Each protocol's code, with its libraries (the Postgres parser's WebAssembly, ssh2, the MCP SDK), is
// loaded when a target needs it: an agent serving one protocol does not hold the others in memory.
const postgres = () => require('./postgres/listener') as typeof import('./postgres/listener');
const kubernetes = () => require('./kubernetes/listener') as typeof import('./kubernetes/listener');
const ssh = () => require('./ssh/listener') as typeof import('./ssh/listener');
const mcp = () => require('./mcp/agent-endpoint') as typeof import('./mcp/agent-endpoint');

/** The protocol listener for each target protocol this agent build serves. */
export const listenerFactories: ListenerFactories = {
  postgres: (target, context) => postgres().startPostgresListener(target, context),
  kubernetes: (target, context) => kubernetes().startKubernetesListener(target, context),
  ssh: (target, context) => ssh().startSshListener(target, context),
};

/** The MCP endpoint over every target's tools. */
export const mcpEndpoint: McpEndpointFactory = (config, context, served) => mcp().startAgentMcp(config, context, served);
