import { UsageError } from './args';
import { ApiError } from './control-plane-client';
import { agentCommand } from './commands/agent';
import { agentsCommand } from './commands/agents';
import { devCommand } from './commands/dev';
import { policiesCommand } from './commands/policies';
import { tokenCommand } from './commands/token';

const USAGE = `usage: twokey <command> [options]

  dev [--data-dir DIR] [--ports auto] [--fresh] [--memory]   run the control plane, demo database and agent locally
  agent --config FILE                                        run a data-plane agent
  token --user NAME [--groups a,b] [--email E]               print a token from the dev issuer
  agents list [--json] | register NAME [--rotate]            agents (admin)
  policies get [--json] | put FILE [--expected-version N]    the policy (admin)

Commands that call the control plane take --url (default: from DIR/dev.json) and --token (or TWOKEY_TOKEN).`;

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  dev: devCommand,
  agent: agentCommand,
  token: tokenCommand,
  agents: agentsCommand,
  policies: policiesCommand,
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const command = name === undefined ? undefined : COMMANDS[name];
  if (!command) {
    console.error(USAGE);
    return name === undefined || name === 'help' || name === '--help' ? 0 : 2;
  }
  try {
    return await command(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`twokey ${name}: ${e.message}`);
      return 2;
    }
    if (e instanceof ApiError) {
      console.error(`twokey ${name}: ${e.message}`);
      return 1;
    }
    throw e;
  }
}
