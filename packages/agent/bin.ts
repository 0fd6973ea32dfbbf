import { agentCommand } from '../../cli/commands/agent';

/**
 * `twokey-agent --config agent.yaml`: the data-plane agent alone, as the `twokey-agent` npm package
 * ships it (one bundled file; its only dependency is the PostgreSQL parser, libpg-query).
 */
agentCommand(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(`twokey-agent: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  },
);
