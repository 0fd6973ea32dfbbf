import { parse, UsageError } from '../args';
import { apiCall, clientOptions, CONTROL_PLANE_OPTIONS } from '../control-plane-client';

interface AgentRow {
  name: string;
  connected: boolean;
  targets: string[];
  lastSeenAt: string | null;
}

const common = CONTROL_PLANE_OPTIONS;

/** `twokey agents list [--json]`, `twokey agents register NAME [--rotate]` and `twokey agents delete NAME`. */
export async function agentsCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'list') {
    const { values } = parse(rest, common);
    const { json } = await apiCall(clientOptions(values), 'GET', '/agents');
    const agents = (json as { agents: AgentRow[] }).agents;
    if (values.json) {
      console.log(JSON.stringify(json, null, 2));
      return 0;
    }
    console.log(['NAME'.padEnd(24), 'CONNECTED'.padEnd(10), 'LAST SEEN'.padEnd(26), 'TARGETS'].join(' '));
    for (const a of agents) {
      console.log([a.name.padEnd(24), (a.connected ? 'yes' : 'no').padEnd(10), (a.lastSeenAt ?? '-').padEnd(26), a.targets.join(',')].join(' '));
    }
    return 0;
  }
  if (sub === 'register') {
    const { values, positionals } = parse(rest, { ...common, rotate: { type: 'boolean', default: false } });
    const name = positionals[0];
    if (!name) throw new UsageError('usage: twokey agents register NAME [--rotate]');
    const { json } = await apiCall(
      clientOptions(values),
      'POST',
      '/agents',
      JSON.stringify({ name, rotate: values.rotate }),
      { 'content-type': 'application/json' },
    );
    const agent = json as { name: string; key: string; connectionsClosed: number };
    if (values.json) console.log(JSON.stringify(agent));
    else {
      if (values.rotate) console.log(`the old key no longer connects; ${agent.connectionsClosed} open connection(s) of ${agent.name} closed`);
      console.log(`agent ${agent.name} registered. Its key is shown once; keep it secret:\n${agent.key}`);
    }
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
