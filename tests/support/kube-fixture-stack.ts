import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startKubeFixture, type KubeFixture } from './kube-fixture';
import { KUBE_TEST_POLICY, runKubectl, startKubeStack, type KubectlResult, type KubeStack } from './kube-stack';

/** The service-account tokens the fixture knows: the agent's read and write credentials. */
export const FIXTURE_READ_SA = 'read-sa-token';
export const FIXTURE_WRITE_SA = 'write-sa-token';

/** The fixture API server, an agent serving target `k8s` in front of it under `policy` (the tests' policy by default), and kubectl straight at the fixture. */
export interface FixtureStack {
  readonly fixture: KubeFixture;
  readonly stack: KubeStack;
  /** kubectl straight at the fixture with the write token (a test's own changes, not a caller's). */
  direct(args: string[]): Promise<KubectlResult>;
  stop(): Promise<void>;
}

export async function startFixtureStack(policy = KUBE_TEST_POLICY): Promise<FixtureStack> {
  const fixture = await startKubeFixture({ tokens: { [FIXTURE_READ_SA]: { user: 'system:serviceaccount:twokey:reader', access: 'read' }, [FIXTURE_WRITE_SA]: { user: 'system:serviceaccount:twokey:writer', access: 'write' } } });
  const stack = await startKubeStack({ policy, targets: ['k8s'], upstream: { url: fixture.url, caPem: fixture.caPem, readToken: FIXTURE_READ_SA, writeToken: FIXTURE_WRITE_SA } });
  const ca = join(stack.dataDir, 'fixture-ca.pem');
  writeFileSync(ca, fixture.caPem);
  return {
    fixture,
    stack,
    direct: (args) => runKubectl([`--server=${fixture.url}`, `--certificate-authority=${ca}`, `--token=${FIXTURE_WRITE_SA}`, ...args], { KUBECONFIG: '/dev/null', HOME: stack.dataDir }),
    async stop() {
      await stack.stop();
      await fixture.stop();
    },
  };
}
