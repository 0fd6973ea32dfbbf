import { KubeUpstream } from '../../../agent/kubernetes/upstream';
import type { KubernetesTargetConfig } from '../../../agent/config';

const target: KubernetesTargetConfig = {
  name: 'k8s',
  protocol: 'kubernetes',
  listen: { host: '127.0.0.1', port: 0 },
  apiServer: 'https://kube.example:6443',
  readToken: { tokenEnv: 'TK_TEST_READ' },
  writeToken: { tokenEnv: 'TK_TEST_WRITE' },
} as KubernetesTargetConfig;

describe('the Kubernetes upstream connection', () => {
  afterEach(() => {
    delete process.env.TK_TEST_READ;
  });
  // NODE_TLS_REJECT_UNAUTHORIZED=0 (a common development setting) turns verification off for every
  // connection that does not ask for it: the service-account tokens must go only to the pinned server.
  it('asks for a verified certificate itself, on pooled requests and on upgrades', async () => {
    process.env.TK_TEST_READ = 'read-token';
    const upstream = new KubeUpstream(target, '-----BEGIN CERTIFICATE-----\n(pinned CA)\n-----END CERTIFICATE-----\n');
    const pooled = await upstream.options({ method: 'GET', path: '/api', headers: {}, credential: 'read' });
    expect((pooled.agent as unknown as { options: { rejectUnauthorized?: boolean } }).options.rejectUnauthorized).toBe(true);
    const upgrade = await upstream.upgradeOptions({ method: 'GET', path: '/api/v1/namespaces/default/pods/p/exec', headers: {}, credential: 'read' });
    expect(upgrade).toMatchObject({ agent: false, rejectUnauthorized: true });
  });
});
