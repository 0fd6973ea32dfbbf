import { connect as tlsConnect } from 'node:tls';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KubeFixture } from '../../support/kube-fixture';
import { startFixtureStack, type FixtureStack } from '../../support/kube-fixture-stack';
import { agentRequest, kubectl, streamKubectl, type KubeStack } from '../../support/kube-stack';
import { postDecision, waitForMail } from '../../support/outbox';
import { waitFor } from '../../support/control-plane';
import { twokey } from '../../support/cli';
import { selfSignedCertificate } from '../../../agent/kubernetes/tls';


describe('kubectl through the agent (the fixture API server upstream)', () => {
  let running: FixtureStack;
  let fixture: KubeFixture;
  let stack: KubeStack;
  let alice: string;
  let vic: string;

  const direct = (args: string[]) => running.direct(args);
  const upstreamUsers = (pathPart: string) => fixture.state.requests.filter((r) => r.path.includes(pathPart)).map((r) => `${r.method} ${r.user ?? ''}`);

  beforeAll(async () => {
    running = await startFixtureStack();
    ({ fixture, stack } = running);
    alice = await stack.token('alice', ['support']);
    vic = await stack.token('vic', ['viewer']);
  }, 120_000);
  afterAll(async () => {
    await running?.stop();
  });

  it('lists, gets and describes pods on the read service account', async () => {
    const list = await kubectl(stack, 'k8s', alice, ['get', 'pods']);
    expect(list.stderr).toBe('');
    expect(list.stdout).toMatch(/^NAME\s+READY\s+STATUS/);
    expect(list.stdout).toContain('web-1');
    const one = await kubectl(stack, 'k8s', alice, ['get', 'pod', 'web-1', '-o', 'jsonpath={.spec.containers[0].image}']);
    expect(one.stdout).toBe('nginx:1.27');
    const described = await kubectl(stack, 'k8s', alice, ['describe', 'pod', 'web-1']);
    expect(described.code).toBe(0);
    expect(described.stdout).toMatch(/Name:\s+web-1/);
    expect(upstreamUsers('/pods')).not.toContainEqual(expect.stringContaining('writer'));
  });

  it('streams a watch event by event (kubectl get -w sees a pod created while it runs)', async () => {
    const watch = streamKubectl(stack, 'k8s', alice, ['get', 'pods', '-w']);
    try {
      await watch.waitFor(/web-1/);
      expect((await direct(['run', 'watched', '--image=busybox'])).code).toBe(0);
      await watch.waitFor(/watched/);
    } finally {
      await watch.stop();
    }
  });

  it('masks a Secret watch event by event (kubectl get secret -w -o yaml): added and modified values never show', async () => {
    const watch = streamKubectl(stack, 'k8s', alice, ['get', 'secret', '-w', '-o', 'yaml']);
    try {
      await watch.waitFor(/name: db-credentials/);
      expect((await direct(['create', 'secret', 'generic', 'watched-secret', '--from-literal=api-key=first-watched-value-58'])).code).toBe(0);
      await watch.waitFor(/api-key: KioqKg==\n(?:.*\n)*?\s+name: watched-secret/);
      expect((await direct(['patch', 'secret', 'watched-secret', '-p', JSON.stringify({ stringData: { 'api-key': 'second-watched-value-59', extra: 'added-later-60' } })])).code).toBe(0);
      await watch.waitFor(/extra: KioqKg==/);
      const shown = watch.stdout();
      for (const value of ['s3cr3t-Pa55w0rd', 'first-watched-value-58', 'second-watched-value-59', 'added-later-60']) {
        expect(shown).not.toContain(value);
        expect(shown).not.toContain(Buffer.from(value).toString('base64'));
      }
      // Every event came as its own document: the initial list, the creation and the change.
      expect(shown.match(/name: watched-secret/g)?.length).toBe(2);
    } finally {
      await watch.stop();
    }
  });

  it('follows logs as lines are written (kubectl logs -f)', async () => {
    const follow = streamKubectl(stack, 'k8s', alice, ['logs', '-f', 'web-1']);
    try {
      await waitFor(() => fixture.state.requests.some((r) => r.path.endsWith('/pods/web-1/log') && r.query.includes('follow=true')) || undefined, 20_000, 'the follow request upstream');
      fixture.state.logs.append('default', 'web-1', 'web', 'a line written after kubectl started following, for ann@example.com\n', Date.now());
      await follow.waitFor(/a line written after kubectl started following, for \S+/);
      expect(follow.stdout()).not.toContain('ann@example.com');
    } finally {
      await follow.stop();
    }
  });

  it('holds kubectl apply until a reviewer approves, then applies it once with the write service account', async () => {
    const manifest = join(stack.dataDir, 'cm.yaml');
    writeFileSync(manifest, 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: approved-config, namespace: default }\ndata: { mode: approved }\n');
    const applying = kubectl(stack, 'k8s', alice, ['apply', '-f', manifest]);
    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', 'approved-config', new Set(), 30_000);
    expect(mail.text).toContain('/api/v1/namespaces/default/configmaps');
    expect((await direct(['get', 'configmap', 'approved-config'])).code).not.toBe(0);
    expect((await postDecision(mail.link, mail.token, 'approve')).status).toBe(200);
    const applied = await applying;
    expect(applied.stdout).toMatch(/configmap\/approved-config created/);
    expect(applied.stderr).toMatch(/Warning: twokey: request [0-9a-f-]{36} approved by bob@example.com/);
    expect((await direct(['get', 'configmap', 'approved-config', '-o', 'jsonpath={.data.mode}'])).stdout).toBe('approved');
    expect(upstreamUsers('/configmaps').filter((u) => u.startsWith('POST'))).toEqual(['POST system:serviceaccount:twokey:writer']);
  });

  it('runs an apply kubectl gave up waiting for once it is approved, when the same command is sent again', async () => {
    const manifest = join(stack.dataDir, 'late.yaml');
    writeFileSync(manifest, 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: approved-late, namespace: default }\ndata: { mode: late }\n');
    const impatient = await kubectl(stack, 'k8s', alice, ['apply', '-f', manifest, '--request-timeout=2s']);
    expect(impatient.code).not.toBe(0);
    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', 'approved-late', new Set(), 30_000);
    expect((await postDecision(mail.link, mail.token, 'approve')).status).toBe(200);
    await waitFor(async () => ((await kubectl(stack, 'k8s', alice, ['apply', '-f', manifest, '--request-timeout=2s'])).code === 0 ? true : undefined), 20_000, 'the approved apply');
    expect((await direct(['get', 'configmap', 'approved-late', '-o', 'jsonpath={.data.mode}'])).stdout).toBe('late');
  });

  it('shows a held Secret to the reviewer with its values masked, and stores the real values once approved', async () => {
    const manifest = join(stack.dataDir, 'secret.yaml');
    writeFileSync(manifest, 'apiVersion: v1\nkind: Secret\nmetadata: { name: held-secret, namespace: default }\nstringData: { token: very-secret-value-42 }\n');
    const applying = kubectl(stack, 'k8s', alice, ['apply', '-f', manifest]);
    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', 'held-secret', new Set(), 30_000);
    expect(mail.text).not.toContain('very-secret-value-42');
    expect(mail.text).not.toContain(Buffer.from('very-secret-value-42').toString('base64'));
    expect((await postDecision(mail.link, mail.token, 'approve')).status).toBe(200);
    expect((await applying).stdout).toMatch(/secret\/held-secret created/);
    const stored = await direct(['get', 'secret', 'held-secret', '-o', 'jsonpath={.data.token}']);
    expect(Buffer.from(stored.stdout, 'base64').toString('utf8')).toBe('very-secret-value-42');
  });

  it('applies a manifest with twokey exec -f, waiting for the approval with the reason the reviewer reads', async () => {
    const manifest = join(stack.dataDir, 'app.yaml');
    writeFileSync(manifest, 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: exec-applied }\ndata: { via: twokey-exec }\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web, namespace: default }\nspec: { replicas: 4 }\n');
    const running = twokey(['exec', '--target', 'k8s', '-f', manifest, '--reason', 'OPS-7 scale for the sale', '--server', stack.server('k8s'), '--ca-file', stack.caFile('k8s'), '--token', alice]);
    const first = await waitForMail(stack.cp.outboxDir, 'bob@example.com', 'exec-applied', new Set(), 30_000);
    expect(first.text).toContain('OPS-7 scale for the sale');
    expect(first.text).toContain('fieldManager=twokey');
    await postDecision(first.link, first.token, 'approve');
    const second = await waitForMail(stack.cp.outboxDir, 'bob@example.com', 'replicas', new Set([first.file]), 30_000);
    await postDecision(second.link, second.token, 'approve');
    const done = await running;
    expect(done.stdout).toBe('ConfigMap default/exec-applied applied\nDeployment default/web applied\n');
    expect(done.code).toBe(0);
    expect((await direct(['get', 'deployment', 'web', '-o', 'jsonpath={.spec.replicas}'])).stdout).toBe('4');
  });

  it('keeps twokey exec --ca-file pinned when NODE_TLS_REJECT_UNAUTHORIZED=0 is in the environment: an agent with another certificate gets no token', async () => {
    const manifest = join(stack.dataDir, 'pinned.yaml');
    writeFileSync(manifest, 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: pin-held }\ndata: { via: twokey-exec }\n');
    const other = join(stack.dataDir, 'other-ca.pem');
    writeFileSync(other, selfSignedCertificate('impostor', ['127.0.0.1', 'localhost']).cert);
    const sent = fixture.state.requests.length;
    const ran = await twokey(['exec', '--target', 'k8s', '-f', manifest, '--server', stack.server('k8s'), '--ca-file', other, '--token', alice], { NODE_TLS_REJECT_UNAUTHORIZED: '0' });
    expect(ran.code).not.toBe(0);
    expect(ran.stderr).toMatch(/self[- ]signed certificate|unable to verify/);
    expect(fixture.state.requests.slice(sent).filter((r) => r.path.includes('pin-held'))).toEqual([]);
  });

  it('refuses kubectl delete for a read-only group with a Forbidden Status naming twokey, and deletes nothing', async () => {
    const deleted = await kubectl(stack, 'k8s', vic, ['delete', 'pod', 'web-1']);
    expect(deleted.code).not.toBe(0);
    expect(deleted.stderr).toBe('Error from server (Forbidden): twokey: write denied by rule viewers\n');
    expect((await direct(['get', 'pod', 'web-1'])).code).toBe(0);
  });

  it('holds kubectl delete secret showing the reviewer the live Secret (values masked), then deletes it on the write token', async () => {
    expect((await direct(['create', 'secret', 'generic', 'doomed-secret', '--from-literal=key=live-secret-value-31', '--from-literal=owner=ann@example.com'])).code).toBe(0);
    const deleting = kubectl(stack, 'k8s', alice, ['delete', 'secret', 'doomed-secret']);
    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', 'doomed-secret', new Set(), 30_000);
    expect(mail.text).toContain('delete secrets default/doomed-secret');
    expect(mail.text).toContain('--- live default/doomed-secret');
    expect(mail.text).toContain('+++ (deleted)');
    expect(mail.text).toMatch(/^-\s+key: KioqKg==$/m);
    expect(mail.text).toMatch(/^-\s+owner: KioqKg==$/m);
    expect(mail.text).not.toContain(Buffer.from('live-secret-value-31').toString('base64'));
    expect(mail.text).not.toContain('live-secret-value-31');
    expect((await direct(['get', 'secret', 'doomed-secret'])).code).toBe(0);
    expect((await postDecision(mail.link, mail.token, 'approve')).status).toBe(200);
    expect((await deleting).stdout).toBe('secret "doomed-secret" deleted\n');
    expect((await direct(['get', 'secret', 'doomed-secret'])).code).not.toBe(0);
    const upstream = fixture.state.requests.filter((r) => r.path.endsWith('/secrets/doomed-secret')).map((r) => `${r.method} ${r.user ?? ''}`);
    expect(upstream).toContain('GET system:serviceaccount:twokey:reader');
    expect(upstream.filter((u) => u.startsWith('DELETE'))).toEqual(['DELETE system:serviceaccount:twokey:writer']);
  });

  it('holds kubectl delete of a ConfigMap showing its live values through the caller\'s detectors', async () => {
    expect((await direct(['create', 'configmap', 'doomed-config', '--from-literal=contact=ann@example.com', '--from-literal=mode=live-mode'])).code).toBe(0);
    const deleting = kubectl(stack, 'k8s', alice, ['delete', 'configmap', 'doomed-config']);
    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', 'doomed-config', new Set(), 30_000);
    expect(mail.text).toMatch(/^-\s+mode: live-mode$/m);
    expect(mail.text).toMatch(/^-\s+contact: /m);
    expect(mail.text).not.toContain('ann@example.com');
    expect((await postDecision(mail.link, mail.token, 'deny')).status).toBe(200);
    expect((await deleting).code).not.toBe(0);
    expect((await direct(['get', 'configmap', 'doomed-config'])).code).toBe(0);
  });

  it('refuses port-forward without an approval, telling the caller the request id', async () => {
    const forwarded = await kubectl(stack, 'k8s', alice, ['port-forward', 'pod/web-1', '18080:8080'], { timeoutMs: 30_000 });
    expect(forwarded.code).not.toBe(0);
    expect(forwarded.stderr).toMatch(/twokey: .*request [0-9a-f-]{36}.*run the same command again once it is approved/);
    expect(fixture.state.requests.some((r) => r.path.endsWith('/portforward'))).toBe(false);
    // Decided, so that no approval workflow outlives the test.
    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', 'portforward', new Set(), 30_000);
    expect((await postDecision(mail.link, mail.token, 'deny')).status).toBe(200);
  });

  it('holds kubectl create configmap (a protobuf body), shows it decoded, and creates what the reviewer saw as JSON on the write token', async () => {
    const before = fixture.state.requests.length;
    const creating = kubectl(stack, 'k8s', alice, ['create', 'configmap', 'created-typed', '--from-literal=colour=teal-for-review']);
    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', 'created-typed', new Set(), 30_000);
    expect(mail.text).toContain('create configmaps default/created-typed');
    expect(mail.text).toContain('colour: teal-for-review');
    expect(mail.text).toContain('body (application/json)');
    expect((await direct(['get', 'configmap', 'created-typed'])).code).not.toBe(0);
    expect((await postDecision(mail.link, mail.token, 'approve')).status).toBe(200);
    const created = await creating;
    expect(created.stdout).toBe('configmap/created-typed created\n');
    expect((await direct(['get', 'configmap', 'created-typed', '-o', 'jsonpath={.data.colour}'])).stdout).toBe('teal-for-review');
    // Only this test's requests: an earlier test creates a ConfigMap directly (kubectl create, protobuf, on the write token).
    const upstream = fixture.state.requests.slice(before).filter((r) => r.path === '/api/v1/namespaces/default/configmaps' && r.method === 'POST' && r.query.includes('kubectl-create'));
    expect(upstream.map((r) => `${r.user ?? ''} ${r.contentType ?? ''}`)).toEqual(['system:serviceaccount:twokey:writer application/json']);
  });

  it('holds kubectl create secret with its values masked for the reviewer, and stores the real values once approved', async () => {
    const creating = kubectl(stack, 'k8s', alice, ['create', 'secret', 'generic', 'created-secret', '--from-literal=token=typed-secret-value-77']);
    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', 'created-secret', new Set(), 30_000);
    expect(mail.text).not.toContain('typed-secret-value-77');
    expect(mail.text).not.toContain(Buffer.from('typed-secret-value-77').toString('base64'));
    expect(mail.text).toContain('token: KioqKg==');
    expect((await postDecision(mail.link, mail.token, 'approve')).status).toBe(200);
    const created = await creating;
    expect(created.stdout).toBe('secret/created-secret created\n');
    const stored = await direct(['get', 'secret', 'created-secret', '-o', 'jsonpath={.data.token}']);
    expect(Buffer.from(stored.stdout, 'base64').toString('utf8')).toBe('typed-secret-value-77');
  });

  it('refuses to hold a protobuf write of a kind the agent cannot read whole (kubectl create deployment), saying to apply a manifest', async () => {
    const created = await kubectl(stack, 'k8s', alice, ['create', 'deployment', 'unreadable', '--image=busybox']);
    expect(created.code).not.toBe(0);
    expect(created.stderr).toMatch(/twokey: the agent reads protobuf bodies of ConfigMap, Secret, Namespace, ServiceAccount, not Deployment: kubectl create sends protobuf; write the object as a manifest and use kubectl apply -f \(or twokey exec -f\)/);
    expect(fixture.state.requests.some((r) => r.path.endsWith('/deployments') && r.method === 'POST')).toBe(false);
  });

  it('masks Secret values in kubectl get secret -o yaml and -o jsonpath', async () => {
    const yaml = await kubectl(stack, 'k8s', alice, ['get', 'secret', 'db-credentials', '-o', 'yaml']);
    expect(yaml.code).toBe(0);
    expect(yaml.stdout).toMatch(/password: KioqKg==/);
    expect(yaml.stdout).not.toContain(Buffer.from('s3cr3t-Pa55w0rd').toString('base64'));
    const jsonpath = await kubectl(stack, 'k8s', alice, ['get', 'secret', 'db-credentials', '-o', 'jsonpath={.data.password}']);
    expect(Buffer.from(jsonpath.stdout, 'base64').toString('utf8')).toBe('****');
    const table = await kubectl(stack, 'k8s', alice, ['get', 'secrets']);
    expect(table.stdout).toMatch(/db-credentials\s+Opaque\s+2/);
  });

  it('asks upstream for JSON and masks it when the client asks for protobuf', async () => {
    const res = await agentRequest(stack, 'k8s', 'GET', '/api/v1/namespaces/default/secrets/db-credentials', { authorization: `Bearer ${alice}`, accept: 'application/vnd.kubernetes.protobuf, */*' });
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const secret = JSON.parse(res.body) as { data: Record<string, string> };
    expect(secret.data).toEqual({ username: 'KioqKg==', password: 'KioqKg==' });
    const upstream = fixture.state.requests.filter((r) => r.path.endsWith('/secrets/db-credentials')).at(-1);
    expect(upstream?.accept).toBe('application/json');
  });

  it('refuses an expired token as Unauthorized (kubectl asks to log in)', async () => {
    const expired = await stack.token('alice', ['support'], -120);
    const got = await kubectl(stack, 'k8s', expired, ['get', 'pods']);
    expect(got.code).not.toBe(0);
    expect(got.stderr).toMatch(/You must be logged in to the server \(twokey: the token was rejected \(expired\)/);
  });

  it('refuses malformed and oversized requests with a Status while a watch on another connection keeps streaming', async () => {
    const watch = streamKubectl(stack, 'k8s', alice, ['get', 'configmaps', '-w']);
    try {
      await watch.waitFor(/app-config/);
      const raw = async (bytes: string | Buffer): Promise<string> => {
        const url = new URL(stack.server('k8s'));
        const socket = tlsConnect({ host: url.hostname, port: Number(url.port), ca: readFileSync(stack.caFile('k8s')) });
        await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
        let answer = '';
        socket.on('data', (c: Buffer) => (answer += c.toString('latin1')));
        socket.on('error', () => undefined);
        socket.write(bytes);
        await new Promise<void>((resolve) => socket.once('close', () => resolve()));
        return answer;
      };
      const status = (answer: string) => ({ code: Number(answer.slice(9, 12)), ...(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { kind: string; reason: string; message: string }) });
      expect(status(await raw('GARBAGE\r\n\r\n'))).toMatchObject({ code: 400, kind: 'Status', reason: 'BadRequest', message: 'twokey: the request could not be read as HTTP' });
      expect(status(await raw(`GET /api/v1/pods HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(64 * 1024)}\r\n\r\n`))).toMatchObject({ code: 413, reason: 'RequestEntityTooLarge', message: 'twokey: the request head is over 16384 bytes' });
      expect(status(await raw(`GET /api/v1/namespaces/%2F/pods HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${alice}\r\nconnection: close\r\n\r\n`))).toMatchObject({ code: 400, reason: 'BadRequest', message: expect.stringMatching(/^twokey: the request path/) });
      const big = Buffer.alloc(4 * 1024 * 1024, 0x61);
      expect(status(await raw(Buffer.concat([Buffer.from(`POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${alice}\r\ncontent-type: application/json\r\ncontent-length: ${big.length}\r\nconnection: close\r\n\r\n`), big])))).toMatchObject({ code: 413, reason: 'RequestEntityTooLarge', message: 'twokey: the body is over 524288 bytes' });
      const later = join(stack.dataDir, 'later.yaml');
      writeFileSync(later, 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: after-the-bad-requests, namespace: default }\n');
      expect((await direct(['apply', '-f', later])).code).toBe(0);
      await watch.waitFor(/after-the-bad-requests/);
    } finally {
      await watch.stop();
    }
  });
});
