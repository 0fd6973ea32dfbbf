import { readFileSync } from 'node:fs';
import { freePort } from '../../../local/free-port';
import { testCertificate } from '../../support/certificate';
import { agentRequest, KUBE_TEST_POLICY, startKubeStack, type KubeStack } from '../../support/kube-stack';

describe('the agent in front of an API server that cannot be reached', () => {
  let stack: KubeStack;
  let closedPort: number;

  beforeAll(async () => {
    // A port that was free a moment ago: nothing listens there.
    closedPort = await freePort('127.0.0.1');
    const tls = testCertificate();
    stack = await startKubeStack({ policy: KUBE_TEST_POLICY, targets: ['k8s'], upstream: { url: `https://127.0.0.1:${closedPort}`, caPem: readFileSync(tls.certFile, 'utf8'), readToken: 'r', writeToken: 'w' } });
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('answers a Status 503 that names no address or cause, and keeps serving', async () => {
    const alice = await stack.token('alice', ['support']);
    for (let i = 0; i < 2; i += 1) {
      const res = await agentRequest(stack, 'k8s', 'GET', '/api/v1/namespaces/default/pods', { authorization: `Bearer ${alice}` });
      expect(res.status).toBe(503);
      expect(JSON.parse(res.body)).toEqual({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', reason: 'ServiceUnavailable', code: 503, message: 'twokey: the API server cannot be reached' });
      expect(res.body).not.toContain(String(closedPort));
    }
  });
});
