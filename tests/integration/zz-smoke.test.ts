import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { testCertificate } from '../support/certificate';
import { kubectl, startKubeStack, type KubeStack } from '../support/kube-stack';

const POLICY = `
targets:
  - { name: k8s, protocol: kubernetes, agent: kube-agent }
reviewers: { ops: [{ subject: bob, email: bob@example.com }] }
rules:
  - name: support
    targets: [k8s]
    subjects: { groups: [support] }
    actions: { read: allow, write: { approve: { groups: [ops] } }, admin: deny, unknown: deny }
`;

describe('smoke', () => {
  let stack: KubeStack;
  let server: ReturnType<typeof createServer>;
  const seen: string[] = [];
  beforeAll(async () => {
    const tls = testCertificate();
    server = createServer({ cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) }, (req, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers.authorization}`);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ major: '1', minor: '32', gitVersion: 'v1.32.0' }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as AddressInfo).port;
    stack = await startKubeStack({ policy: POLICY, targets: ['k8s'], upstream: { url: `https://localhost:${port}`, caPem: readFileSync(tls.certFile, 'utf8'), readToken: 'read-sa', writeToken: 'write-sa' } });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
    server?.close();
  });
  it('works', async () => {
    const r = await kubectl(stack, 'k8s', await stack.token('alice', ['support']), ['get', '--raw', '/version']);
    console.log(r, seen);
    const bad = await kubectl(stack, 'k8s', 'nope', ['get', '--raw', '/version']);
    console.log(bad);
    const bad2 = await kubectl(stack, 'k8s', await stack.token('alice', ['support']), ['get', '--raw', '/api/v1/namespaces/default/pods/x/exec?command=ls']);
    console.log(bad2);
  });
});
