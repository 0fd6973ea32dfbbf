import { parse, UsageError } from '../args';
import { addPage, PAGE_OPTIONS, tellNext } from '../page-options';
import { writeFileSync } from 'node:fs';
import { apiCall, clientOptions, CONTROL_PLANE_OPTIONS } from '../control-plane-client';
import { AGENT_CONFIG_PATH, AGENT_KEY_ENV, agentConfigYaml, agentInstallLine, targetsOf, type AgentSetup } from './agent-setup';

interface AgentRow {
  name: string;
  connected: boolean;
  targets: string[];
  lastSeenAt: string | null;
}

const common = CONTROL_PLANE_OPTIONS;

/** `twokey agents list [--limit N] [--next TOKEN] [--json]`, `twokey agents register NAME [--rotate] [-o agent.yaml]` and `twokey agents delete NAME`. */
export async function agentsCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'list') {
    const { values } = parse(rest, { ...common, ...PAGE_OPTIONS });
    const q = addPage(new URLSearchParams(), values, 'usage: twokey agents list [--limit N] [--next TOKEN] [--json]');
    const { json } = await apiCall(clientOptions(values), 'GET', `/agents${q.size ? `?${q}` : ''}`);
    const { agents, next } = json as { agents: AgentRow[]; next?: string };
    if (values.json) {
      console.log(JSON.stringify(json, null, 2));
      return 0;
    }
    console.log(['NAME'.padEnd(24), 'CONNECTED'.padEnd(10), 'LAST SEEN'.padEnd(26), 'TARGETS'].join(' '));
    for (const a of agents) {
      console.log([a.name.padEnd(24), (a.connected ? 'yes' : 'no').padEnd(10), (a.lastSeenAt ?? '-').padEnd(26), a.targets.join(',')].join(' '));
    }
    tellNext('twokey agents list', next);
    return 0;
  }
  if (sub === 'register') {
    const { values, positionals } = parse(rest, { ...common, rotate: { type: 'boolean', default: false }, output: { type: 'string', short: 'o' } });
    const name = positionals[0];
    if (!name) throw new UsageError('usage: twokey agents register NAME [--rotate] [-o agent.yaml]');
    const options = clientOptions(values);
    const { json } = await apiCall(options, 'POST', '/agents', JSON.stringify({ name, rotate: values.rotate }), { 'content-type': 'application/json' });
    const agent = json as { name: string; key: string; connectionsClosed: number; setup: AgentSetup };
    if (values.json) {
      console.log(JSON.stringify(agent));
      return 0;
    }
    const policy = await apiCall(options, 'GET', '/policies').then(
      (r) => (r.json as { source?: string }).source,
      () => undefined,
    );
    const yaml = agentConfigYaml(agent.name, agent.setup, targetsOf(policy, agent.name));
    if (values.rotate) console.log(`the old key no longer connects; ${agent.connectionsClosed} open connection(s) of ${agent.name} closed`);
    console.log(`agent ${agent.name} registered. Its key is shown once; keep it secret and give it to the agent in its environment:`);
    console.log(`${AGENT_KEY_ENV}=${agent.key}`);
    console.log(`\nInstall the agent on a host that reaches the database (Node 20.19+):\n  ${agentInstallLine()}`);
    if (values.output) {
      writeFileSync(values.output, yaml, { mode: 0o600 });
      console.log(`\nIts configuration is in ${values.output}; fill in each target's upstream, then: twokey-agent --config ${values.output}`);
    } else console.log(`\nSave this as ${AGENT_CONFIG_PATH}, fill in each target's upstream, then: twokey-agent --config ${AGENT_CONFIG_PATH}\n\n${yaml}`);
    return 0;
  }
  if (sub === 'delete') {
    const { values, positionals } = parse(rest, common);
    const name = positionals[0];
    if (!name) throw new UsageError('usage: twokey agents delete NAME');
    await apiCall(clientOptions(values), 'DELETE', `/agents/${encodeURIComponent(name)}`);
    console.log(`agent ${name} deleted; its key no longer connects and its open connections are closed`);
    return 0;
  }
  throw new UsageError('usage: twokey agents list|register|delete');
}
