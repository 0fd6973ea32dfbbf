import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument, stringify } from 'yaml';

/** What the control plane tells a new agent's admin (nothing secret but the key, which goes elsewhere). */
export interface AgentSetup {
  readonly tunnelUrl?: string;
  readonly issuers: readonly { issuer: string; audience: string; refusedAudiences: string[]; groupsClaim?: string }[];
}

export const AGENT_KEY_ENV = 'TWOKEY_AGENT_KEY';
export const AGENT_CONFIG_PATH = '/etc/twokey/agent.yaml';

/** The `twokey-agent` package of this release: the one `twokey agents register` tells the admin to install. */
export function agentInstallLine(): string {
  const { version } = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };
  return `npm install --global twokey-agent@${version}`;
}

/** The targets the policy assigns to `agent`, by name (an unreadable policy assigns none). */
export function targetsOf(policySource: string | undefined, agent: string): string[] {
  const doc = policySource ? (parseDocument(policySource).toJS() as { targets?: { name?: unknown; agent?: unknown }[] } | null) : null;
  return (doc?.targets ?? []).filter((t) => t.agent === agent && typeof t.name === 'string').map((t) => t.name as string);
}

/**
 * A ready agent.yaml for a registered agent: its name, the tunnel, the key read from the environment,
 * the identity providers whose tokens callers present, and one entry per target the policy assigns
 * it, whose upstream and credentials the admin fills in (they never leave the agent's host).
 */
export function agentConfigYaml(name: string, setup: AgentSetup, targets: readonly string[]): string {
  const upstreamEnv = (target: string, role: string): string => `${target.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_${role}_PASSWORD`;
  const config = {
    name,
    controlPlane: { url: setup.tunnelUrl ?? 'wss://REPLACE-WITH-TunnelUrl', keyEnv: AGENT_KEY_ENV },
    stateDir: '/var/lib/twokey',
    identity: {
      issuers:
        setup.issuers.length > 0
          ? setup.issuers.map((i) => ({ issuer: i.issuer, audience: i.audience, refusedAudiences: i.refusedAudiences, groupsClaim: i.groupsClaim ?? 'groups' }))
          : [{ issuer: 'https://REPLACE-WITH-your-IdP/', audience: 'REPLACE-WITH-the-data-plane-audience', refusedAudiences: ['REPLACE-WITH-the-API-audience'], groupsClaim: 'groups' }],
    },
    targets: (targets.length > 0 ? targets : ['my-database']).map((target) => ({
      name: target,
      protocol: 'postgres',
      listen: { host: '127.0.0.1', port: 6543 },
      upstream: { host: 'REPLACE-WITH-database-host', port: 5432, database: 'REPLACE-WITH-database' },
      readCredential: { user: 'twokey_read', passwordEnv: upstreamEnv(target, 'READ') },
      writeCredential: { user: 'twokey_write', passwordEnv: upstreamEnv(target, 'WRITE') },
    })),
  };
  return `# twokey agent ${name}: twokey-agent --config ${AGENT_CONFIG_PATH}\n# Fill in each target's upstream; passwords and the agent key come from the environment.\n${stringify(config)}`;
}
