import { UsageError } from './args';
import { NotLoggedInError } from './auth/login-session';
import { OAuthError } from './auth/oauth-client';
import { LoginCacheError } from './auth/token-cache';
import { LoginLockError } from './auth/login-lock';
import { ApiError } from './control-plane-client';

const USAGE = `usage: twokey <command> [options]

  dev [--data-dir DIR] [--ports auto] [--fresh] [--memory] [--idp oidc] [--slack]
                                                             run the control plane, demo database and agent locally
  agent --config FILE                                        run a data-plane agent
  login [--device] [--issuer URL --client-id ID] [--use id]  sign in with the OpenID provider (browser + PKCE, or device code)
  login --saml [--url CONTROL_PLANE]                         sign in through the SAML IdP (the control plane issues the token)
  logout                                                     revoke and forget the cached login
  token [--kube]                                             print a fresh token from the login (psql password, kubectl, ssh);
                                                             --kube: as a kubectl ExecCredential (any token option)
  kubeconfig --target T [--user NAME] [--kubeconfig FILE]    a kubeconfig entry for an agent's Kubernetes target, its CA pinned
        [--state-dir DIR | --server URL --ca-file F]         (twokey token --kube as its exec plugin)
  token --client-credentials --issuer URL --client-id ID     a service's token (secret in TWOKEY_CLIENT_SECRET)
  token --user NAME [--audience data|api] [--groups a,b]     print a token from the dev issuer (data: psql, exec;
        [--email E]                                          api: TWOKEY_TOKEN for the control plane)
  agents list [--limit N] [--next T] [--json] | register NAME [--rotate] [-o FILE]
                                                              agents (admin); rotating a key closes the agent's connections
  agents delete NAME                                         remove an agent; its key stops working at once
  policies get [--json] | put FILE [--reason R] [--wait]     the policy (admin); a change waits for another admin (exit 5)
  policies put FILE --emergency --reason R                   store at once, telling every admin and auditor
  approvals list [--json]                                    pending and recent approval requests
  exec --target T -f script.sql [--reason R] [--wait]        run a whole script once approved (one transaction)
  exec --target T -f manifest.yaml [--reason R] [-n NS]      server-side apply a manifest through a Kubernetes target,
        [--server URL --ca-file F]                           waiting for approval however long it takes
  request-access --target T --minutes M --reason R           ask for a time-boxed write window
  sessions list [--target T] [--user U] [--since 1h] [--limit N] [--next T] [--json]
                                                             recorded sessions (auditors)
  recording get <id> [-o FILE] | verify FILE                 download and verify a recording (exit 3 if altered)
  replay <id> [--speed N]                                    a Postgres, Kubernetes API or MCP session as a transcript; a terminal session played back
  ssh-keys add FILE.pub [--identity KEY] [--ttl 8h] | list | remove FINGERPRINT|ID
                                                             your SSH public keys (default 8 h, at most 24 h); add signs
                                                             with the private key (FILE without .pub, KEY or ssh-agent)
  known-hosts [--target T] [--state-dir DIR] [--host NAME]   known_hosts lines of the agent's SSH endpoints
  ssh TARGET [--user U] [--known-hosts FILE] [-- ssh args]   ssh to a target, the token (TWOKEY_SSH_TOKEN or the
                                                             login's) given at the password prompt
  mcp [--target T] [--url URL] [--token T] [--ca FILE]       MCP over stdio for AI clients, relayed to the agent's endpoint

Commands that call the control plane take --url (default: from DIR/dev.json) and --token (or TWOKEY_TOKEN, an
API token); exec and request-access connect to an agent with --token (or PGPASSWORD, a data-plane token).`;

type Command = (argv: string[]) => Promise<number>;

// Each command loads its own modules on demand: `twokey token` need not load the AWS SDK or Postgres.
/* eslint-disable @typescript-eslint/no-require-imports */
const COMMANDS: Record<string, () => Command> = {
  dev: () => (require('./commands/dev') as typeof import('./commands/dev')).devCommand,
  agent: () => (require('./commands/agent') as typeof import('./commands/agent')).agentCommand,
  token: () => (require('./commands/token') as typeof import('./commands/token')).tokenCommand,
  kubeconfig: () => (require('./commands/kubeconfig') as typeof import('./commands/kubeconfig')).kubeconfigCommand,
  login: () => (require('./commands/login') as typeof import('./commands/login')).loginCommand,
  logout: () => (require('./commands/login') as typeof import('./commands/login')).logoutCommand,
  agents: () => (require('./commands/agents') as typeof import('./commands/agents')).agentsCommand,
  policies: () => (require('./commands/policies') as typeof import('./commands/policies')).policiesCommand,
  approvals: () => (require('./commands/approvals') as typeof import('./commands/approvals')).approvalsCommand,
  exec: () => (require('./commands/exec') as typeof import('./commands/exec')).execCommand,
  sessions: () => (require('./commands/recordings') as typeof import('./commands/recordings')).sessionsCommand,
  recording: () => (require('./commands/recordings') as typeof import('./commands/recordings')).recordingCommand,
  replay: () => (require('./commands/recordings') as typeof import('./commands/recordings')).replayCommand,
  'ssh-keys': () => (require('./commands/ssh-keys') as typeof import('./commands/ssh-keys')).sshKeysCommand,
  'known-hosts': () => (require('./commands/ssh') as typeof import('./commands/ssh')).knownHostsCommand,
  ssh: () => (require('./commands/ssh') as typeof import('./commands/ssh')).sshCommand,
  mcp: () => (require('./commands/mcp') as typeof import('./commands/mcp')).mcpCommand,
  'request-access': () => (require('./commands/exec') as typeof import('./commands/exec')).requestAccessCommand,
};
/* eslint-enable @typescript-eslint/no-require-imports */

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const command = name === undefined ? undefined : COMMANDS[name]?.();
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
    if (e instanceof ApiError || e instanceof OAuthError || e instanceof NotLoggedInError || e instanceof LoginCacheError || e instanceof LoginLockError) {
      console.error(`twokey ${name}: ${e.message}`);
      return 1;
    }
    throw e;
  }
}
