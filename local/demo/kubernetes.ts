import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startKubeFixture } from '../../tests/support/kube-fixture';

export const DEMO_KUBE_TARGET = 'demo-k8s';

/** The demo Kubernetes API server (the test fixture: no real cluster runs here) and the agent's view of it. */
export interface DemoKubernetes {
  /** The target's agent config (files written in `agentDir`). */
  readonly target: Record<string, unknown>;
  stop(): Promise<void>;
}

/**
 * Starts the fixture API server with the demo application and two service-account tokens (read: get,
 * list, watch; write: everything), each written to a file in `agentDir` with the fixture's CA, and
 * returns the `demo-k8s` target that points the agent at it.
 */
export async function startDemoKubernetes(agentDir: string, host: string, listenPort: number): Promise<DemoKubernetes> {
  const read = randomBytes(24).toString('base64url');
  const write = randomBytes(24).toString('base64url');
  const fixture = await startKubeFixture({ host, tokens: { [read]: { user: 'system:serviceaccount:twokey:reader', access: 'read' }, [write]: { user: 'system:serviceaccount:twokey:writer', access: 'write' } } });
  await writeFile(join(agentDir, 'kube-ca.pem'), fixture.caPem, { mode: 0o600 });
  await writeFile(join(agentDir, 'kube-read.token'), read, { mode: 0o600 });
  await writeFile(join(agentDir, 'kube-write.token'), write, { mode: 0o600 });
  return {
    target: {
      name: DEMO_KUBE_TARGET,
      protocol: 'kubernetes',
      listen: { host, port: listenPort },
      apiServer: fixture.url,
      caFile: 'kube-ca.pem',
      readToken: { tokenFile: 'kube-read.token' },
      writeToken: { tokenFile: 'kube-write.token' },
    },
    stop: () => fixture.stop(),
  };
}
