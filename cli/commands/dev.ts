import { join, resolve } from 'node:path';
import { startDevStack } from '../../local/dev-stack';
import { DEFAULT_DATA_DIR } from '../../local/dev-config';
import { parse, UsageError } from '../args';

const REPO_ROOT = resolve(__dirname, '..', '..');

export async function devCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    'data-dir': { type: 'string', default: DEFAULT_DATA_DIR },
    ports: { type: 'string', default: 'default' },
    fresh: { type: 'boolean', default: false },
    memory: { type: 'boolean', default: false },
    policy: { type: 'string', default: resolve(REPO_ROOT, 'examples/dev/policy.yaml') },
    'no-demo': { type: 'boolean', default: false },
    idp: { type: 'string' },
    slack: { type: 'boolean', default: false },
  });
  if (values.idp !== undefined && values.idp !== 'oidc') throw new UsageError('--idp takes oidc');
  if (values.ports !== 'auto' && values.ports !== 'default') throw new UsageError('--ports takes auto or default');
  // Handlers log every request; in the terminal only warnings matter (the agent logs to DIR/logs/agent.log).
  process.env.LOG_LEVEL ??= 'warn';
  const started = Date.now();
  const stack = await startDevStack({
    dataDir: values['data-dir'],
    memory: values.memory,
    fresh: values.fresh,
    autoPorts: values.ports === 'auto',
    demo: !values['no-demo'],
    policyFile: values.policy,
    idp: values.idp,
    slack: values.slack,
    log: (line) => console.error(line),
  });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const dir = values['data-dir'];
  const dd = dir === DEFAULT_DATA_DIR ? '' : ` --data-dir ${dir}`;
  const pg = stack.info.targets['demo-pg'];
  const k8s = stack.info.targets['demo-k8s'];
  const [pgHost, pgPort] = (pg?.endpoint ?? '127.0.0.1:?').split(':');
  console.log(
    [
      '',
      `twokey dev is up in ${seconds}s (data in ${resolve(dir)})`,
      `  control plane  ${stack.info.controlPlane.httpUrl}   tunnel ${stack.info.controlPlane.wsUrl}`,
      `  OIDC issuer    ${stack.info.issuer}`,
      pg ? `  demo-pg        agent endpoint ${pg.endpoint ?? '(not served yet)'}   direct (superuser) ${pg.adminUrl}` : '',
      k8s ? `  demo-k8s       agent endpoint https://${k8s.endpoint ?? '(not served yet)'} (a Kubernetes API stand-in upstream, no real cluster)` : '',
      stack.info.mcp ? `  MCP            ${stack.info.mcp.url}   (AI clients: npx twokey mcp --target demo-pg${dd})` : '',
      `  outbox         ${stack.info.outboxDir}`,
      stack.info.slack ? `  Slack stand-in ${stack.info.slack.viewer} (messages to #dba; press their buttons there)` : '',
      stack.info.idp ? `  OpenID provider ${stack.info.idp.issuer} (twokey login${dd}; any password)` : '',
      '',
      'Try (in another terminal):',
      `  export TWOKEY_TOKEN=$(npx twokey token --user root --audience api${dd})`,
      `  npx twokey agents list --json${dd}`,
      pg?.endpoint
        ? `  PGPASSWORD=$(npx twokey token --user alice${dd}) psql "host=${pgHost} port=${pgPort} dbname=demo user=alice"`
        : '',
      k8s?.endpoint
        ? `  npx twokey kubeconfig --target demo-k8s --user alice${dd} --kubeconfig ${join(dir, 'kubeconfig')} && KUBECONFIG=${join(dir, 'kubeconfig')} kubectl get pods`
        : '',
      '',
      'Ctrl-C stops everything.',
    ]
      .filter((l) => l !== '')
      .join('\n'),
  );
  await new Promise<void>((resolveStop) => {
    let stopping = false;
    const stop = (): void => {
      if (stopping) return;
      stopping = true;
      console.error('\nstopping twokey dev ...');
      void stack.stop().then(() => resolveStop());
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    stack.agentProcess?.once('exit', (code) => {
      if (!stopping) console.error(`the agent exited (code ${code}); see ${resolve(dir, 'logs/agent.log')}`);
    });
  });
  return 0;
}
