import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { connect as tlsConnect, createServer, type Server, type TLSSocket } from 'node:tls';
import { servingCertificate } from '../../support/kube-fixture/tls';
import { agentRequest, startKubeStack, type KubeStack } from '../../support/kube-stack';

/**
 * An upstream that answers as a hostile one could: it refuses an upgrade with a plain answer and keeps
 * the connection open, as a real API server does for a pod that is not there (anything the agent
 * relayed after the upgrade request would be read as more HTTP requests on the agent's connection),
 * and a service behind the `proxy` subresource redirects elsewhere.
 */
const POLICY = `
targets:
  - { name: k8s, protocol: kubernetes, agent: kube-agent }
rules:
  - name: operators
    targets: [k8s]
    subjects: { groups: [operators] }
    actions: { read: allow, write: deny, admin: allow, unknown: deny }
`;

const REFUSAL = JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'pods "gone" not found', reason: 'NotFound', code: 404 });

describe('a hostile upstream', () => {
  let upstream: Server;
  let stack: KubeStack;
  const received: string[] = [];
  let upstreamClosed: Promise<void>;

  beforeAll(async () => {
    const tls = servingCertificate();
    let closed: () => void = () => undefined;
    upstreamClosed = new Promise((resolve) => (closed = resolve));
    upstream = createServer({ cert: tls.certPem, key: tls.keyPem }, (s: TLSSocket) => {
      let text = '';
      s.on('data', (c: Buffer) => {
        const first = !text.includes('\r\n\r\n');
        text += c.toString('latin1');
        if (!first || !text.includes('\r\n\r\n')) return;
        const redirect = /^GET \S*\/proxy\/(\S*) /.exec(text)?.[1];
        if (redirect !== undefined) s.end(`HTTP/1.1 302 Found\r\nlocation: ${redirect === 'away' ? 'https://collector.invalid/steal' : '/api/v1/namespaces/default/services/web/proxy/here/'}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`);
        else s.write(`HTTP/1.1 404 Not Found\r\nlocation: https://collector.invalid/steal\r\ncontent-type: application/json\r\ncontent-length: ${REFUSAL.length}\r\n\r\n${REFUSAL}`);
      });
      s.on('error', () => undefined);
      s.once('close', () => {
        received.push(text);
        if (text.includes('/exec?')) closed();
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const url = `https://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    stack = await startKubeStack({ policy: POLICY, targets: ['k8s'], upstream: { url, caPem: tls.caPem, readToken: 'smuggle-read', writeToken: 'smuggle-write' } });
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
    await new Promise((resolve) => upstream?.close(resolve));
  });

  it('never passes a proxied service\'s redirect to another host on to the caller (kubectl would follow it with the caller\'s token)', async () => {
    const token = await stack.token('olga', ['operators']);
    const away = await agentRequest(stack, 'k8s', 'GET', '/api/v1/namespaces/default/services/web/proxy/away', { authorization: `Bearer ${token}` });
    expect(away.status).toBe(302);
    expect(away.headers.location).toBeUndefined();
    const here = await agentRequest(stack, 'k8s', 'GET', '/api/v1/namespaces/default/services/web/proxy/here', { authorization: `Bearer ${token}` });
    expect(here.headers.location).toBe('/api/v1/namespaces/default/services/web/proxy/here/');
  });

  it('relays an SPDY upgrade\'s refusal without its redirect, and never passes on a request pipelined behind the upgrade', async () => {
    const token = await stack.token('olga', ['operators']);
    const url = new URL(stack.server('k8s'));
    const socket = tlsConnect({ host: url.hostname, port: Number(url.port), ca: readFileSync(stack.caFile('k8s')) });
    await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
    let answer = '';
    const answered = new Promise<void>((resolve) =>
      socket.on('data', (c: Buffer) => {
        answer += c.toString('latin1');
        if (answer.endsWith(REFUSAL)) resolve();
      }),
    );
    socket.write(
      `POST /api/v1/namespaces/default/pods/gone/exec?command=sh HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${token}\r\nconnection: Upgrade\r\nupgrade: SPDY/3.1\r\nx-stream-protocol-version: v4.channel.k8s.io\r\n\r\n` +
        'GET /api/v1/namespaces/kube-system/secrets HTTP/1.1\r\nhost: x\r\n\r\n',
    );
    await answered;
    expect(answer).toMatch(/^HTTP\/1\.1 404 /);
    expect(answer).not.toContain('collector.invalid');
    socket.end();
    await upstreamClosed;
    const exec = received.find((r) => r.includes('/exec?')) ?? '';
    const requests = (exec.match(/ HTTP\/1\.1\r\n/g) ?? []).length;
    expect(exec).toMatch(/^POST \/api\/v1\/namespaces\/default\/pods\/gone\/exec\?command=sh HTTP\/1\.1\r\n/);
    expect(exec).toContain('authorization: Bearer smuggle-read');
    expect(requests).toBe(1);
    expect(exec).not.toContain('/secrets');
  });
});
