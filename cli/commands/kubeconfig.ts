import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { generatedTlsDir } from '../../agent/kubernetes/tls';
import { DEFAULT_DATA_DIR } from '../../local/dev-config';
import { parse, UsageError } from '../args';
import { withKubeconfigEntry } from '../kube-credentials';

const TWOKEY_BIN = resolve(__dirname, '..', 'bin.cjs');

/**
 * `twokey kubeconfig --target T [--state-dir DIR | --server URL --ca-file F] [--user NAME] [--kubeconfig FILE]`:
 * a kubeconfig entry (cluster, user, context named T) for an agent's Kubernetes endpoint: its CA pinned
 * (the certificate the agent made for the target, from its state directory, or --ca-file) and
 * `twokey token --kube` as the exec credential plugin (`--user NAME`: a dev issuer token). Merged into
 * FILE (made current), or printed.
 */
export async function kubeconfigCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    target: { type: 'string' },
    'state-dir': { type: 'string' },
    server: { type: 'string' },
    'ca-file': { type: 'string' },
    user: { type: 'string' },
    kubeconfig: { type: 'string' },
    'data-dir': { type: 'string', default: DEFAULT_DATA_DIR },
  });
  const target = values.target;
  if (!target) throw new UsageError('usage: twokey kubeconfig --target T [--state-dir DIR | --server URL --ca-file F] [--user NAME] [--kubeconfig FILE]');
  const stateDir = resolve(values['state-dir'] ?? join(values['data-dir'], 'agent', 'state'));
  const server = values.server ?? (await endpointOf(stateDir, target));
  if (!server.startsWith('https://')) throw new UsageError('--server takes an https:// URL');
  const caFile = values['ca-file'] ?? join(generatedTlsDir(stateDir, target), 'cert.pem');
  const caPem = await readFile(caFile, 'utf8').catch(() => {
    throw new UsageError(`cannot read the listener's CA ${caFile}: pass --ca-file (the certificate the agent serves, or its CA)`);
  });
  const dataDir = resolve(values['data-dir']);
  const args = [TWOKEY_BIN, 'token', '--kube', ...(values.user ? ['--user', values.user, '--data-dir', dataDir] : [])];
  const entry = { name: target, server, caPem, command: process.execPath, args };
  if (!values.kubeconfig) {
    process.stdout.write(withKubeconfigEntry('', entry, true));
    return 0;
  }
  const existing = await readFile(values.kubeconfig, 'utf8').catch(() => '');
  await writeFile(values.kubeconfig, withKubeconfigEntry(existing, entry, true), { mode: 0o600 });
  console.error(`wrote context ${target} to ${values.kubeconfig}`);
  return 0;
}

/** The target's listener from the agent's endpoints.json, as an https:// URL. */
async function endpointOf(stateDir: string, target: string): Promise<string> {
  const endpoints = JSON.parse(await readFile(join(stateDir, 'endpoints.json'), 'utf8').catch(() => '{}')) as Record<string, string>;
  const endpoint = endpoints[target];
  if (!endpoint) throw new UsageError(`no endpoint for ${target} in ${stateDir}/endpoints.json: pass --server https://host:port`);
  return `https://${endpoint.replace(/^0\.0\.0\.0:/, '127.0.0.1:')}`;
}
