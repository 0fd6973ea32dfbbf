import { readFileSync, writeFileSync } from 'node:fs';
import type { ClientRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { MAX_REQUESTS_IN_FLIGHT_PER_CALLER } from '../../../agent/kubernetes/api-sessions';
import { join } from 'node:path';
import type { KubeFixture } from '../../support/kube-fixture';
import { startFixtureStack, type FixtureStack } from '../../support/kube-fixture-stack';
import { agentRequest, kubectl, type KubeStack } from '../../support/kube-stack';
import { postDecision, readOutbox, waitForMail } from '../../support/outbox';
import { bytesField, entry, envelope, objectMeta } from '../../support/kube-protobuf';
import { waitFor } from '../../support/control-plane';

/**
 * An outsider's attacks on the Kubernetes proxy (held writes, review and run), each against the real
 * agent, the fixture API server and the real kubectl.
 */

describe('attacks on held Kubernetes writes', () => {
  let running: FixtureStack;
  let fixture: KubeFixture;
  let stack: KubeStack;
  let alice: string;
  const direct = (args: string[]) => running.direct(args);
  /** The headers of alice's WebSocket upgrade offering `protocols`. */
  const webSocketUpgrade = (protocols: string): Record<string, string> => ({
    authorization: `Bearer ${alice}`,
    connection: 'Upgrade',
    upgrade: 'websocket',
    'sec-websocket-version': '13',
    'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
    'sec-websocket-protocol': protocols,
  });

  beforeAll(async () => {
    running = await startFixtureStack();
    ({ fixture, stack } = running);
    alice = await stack.token('alice', ['support']);
  }, 120_000);
  afterAll(async () => {
    await running?.stop();
  });

  it('shows a held patch as a diff against the live object, and refuses to run it once the object changed after the review', async () => {
    const patching = kubectl(stack, 'k8s', alice, ['patch', 'configmap', 'app-config', '--type=merge', '-p', '{"data":{"LOG_LEVEL":"debug"}}']);
    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', 'app-config', new Set(), 30_000);
    expect(mail.text).toMatch(/-\s*LOG_LEVEL: info/);
    expect(mail.text).toMatch(/\+\s*LOG_LEVEL: debug/);
    // Someone changes the object while the patch waits for its reviewer.
    expect((await direct(['patch', 'configmap', 'app-config', '--type=merge', '-p', '{"data":{"EXTRA":"added-meanwhile"}}'])).code).toBe(0);
    expect((await postDecision(mail.link, mail.token, 'approve')).status).toBe(200);
    const patched = await patching;
    expect(patched.code).not.toBe(0);
    expect(patched.stderr).toMatch(/twokey: default\/app-config changed after it was reviewed/);
    expect((await direct(['get', 'configmap', 'app-config', '-o', 'jsonpath={.data.LOG_LEVEL}'])).stdout).toBe('info');
  });

  it('answers a write whose body cannot be reviewed with a Status and sends nothing upstream', async () => {
    const res = await agentRequest(stack, 'k8s', 'PATCH', '/api/v1/namespaces/default/configmaps/app-config', { authorization: `Bearer ${alice}`, 'content-type': 'application/json-patch+json' }, '{"not":"an array"}');
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toMatchObject({ kind: 'Status', message: expect.stringMatching(/^twokey: a JSON patch is an array of operations/) });
  });

  it('refuses a delete with a body and ?dryRun=All with a Status (the API server would ignore the query and delete for real), sending nothing upstream', async () => {
    expect((await direct(['create', 'configmap', 'dry-run-victim', '--from-literal=a=b'])).code).toBe(0);
    const before = fixture.state.requests.length;
    const res = await agentRequest(stack, 'k8s', 'DELETE', '/api/v1/namespaces/default/configmaps/dry-run-victim?dryRun=All', { authorization: `Bearer ${alice}`, 'content-type': 'application/json', 'content-length': '34' }, '{"propagationPolicy":"Background"}');
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toMatchObject({ kind: 'Status', reason: 'BadRequest', message: "twokey: a delete with a body takes its options from the body and the API server ignores the query's dryRun: send them in the body" });
    expect(fixture.state.requests.slice(before).some((r) => r.method === 'DELETE')).toBe(false);
    expect((await direct(['get', 'configmap', 'dry-run-victim'])).code).toBe(0);
  });

  it('holds a JSON patch whose copies would double the document without computing it, and keeps serving meanwhile', async () => {
    const ops = Array.from({ length: 40 }, (_, i) => ({ op: 'copy', from: '', path: `/c${i}` }));
    const patching = agentRequest(stack, 'k8s', 'PATCH', '/api/v1/namespaces/default/configmaps/app-config', { authorization: `Bearer ${alice}`, 'content-type': 'application/json-patch+json' }, JSON.stringify(ops));
    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', '/c39', new Set(), 30_000);
    expect(mail.text).toContain('copies over');
    expect((await agentRequest(stack, 'k8s', 'GET', '/api/v1/namespaces/default/pods', { authorization: `Bearer ${alice}` })).status).toBe(200);
    expect((await postDecision(mail.link, mail.token, 'deny')).status).toBe(200);
    const refused = await patching;
    expect(refused.status).toBe(403);
    expect(JSON.parse(refused.body)).toMatchObject({ kind: 'Status', message: expect.stringMatching(/^twokey: /) });
  });

  it('masks the Secret a held server-side apply returns once approved, and shows describe secret without values', async () => {
    const manifest = join(stack.dataDir, 'ssa-secret.yaml');
    writeFileSync(manifest, 'apiVersion: v1\nkind: Secret\nmetadata: { name: ssa-secret, namespace: default }\nstringData: { key: Ssa-Pa55-in-the-answer }\n');
    const applying = kubectl(stack, 'k8s', alice, ['apply', '--server-side', '-f', manifest, '-o', 'yaml']);
    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', 'ssa-secret', new Set(), 30_000);
    expect(mail.text).toContain('server-side apply');
    expect(mail.text).not.toContain('Ssa-Pa55-in-the-answer');
    expect((await postDecision(mail.link, mail.token, 'approve')).status).toBe(200);
    const applied = await applying;
    expect(applied.code).toBe(0);
    expect(applied.stdout).toMatch(/key: KioqKg==/);
    expect(applied.stdout).not.toContain(Buffer.from('Ssa-Pa55-in-the-answer').toString('base64'));
    const described = await kubectl(stack, 'k8s', alice, ['describe', 'secret', 'ssa-secret']);
    expect(described.stdout).toMatch(/key:\s+4 bytes/);
    expect((await direct(['get', 'secret', 'ssa-secret', '-o', 'jsonpath={.data.key}'])).stdout).toBe(Buffer.from('Ssa-Pa55-in-the-answer').toString('base64'));
  });

  it.each([
    ['both Transfer-Encoding and Content-Length', 'transfer-encoding: chunked\r\ncontent-length: 4\r\n\r\n0\r\n\r\n'],
    ['two different Content-Lengths', 'content-length: 2\r\ncontent-length: 40\r\n\r\n{}'],
    ['a Transfer-Encoding that does not end in chunked', 'transfer-encoding: chunked, identity\r\n\r\n0\r\n\r\n'],
  ])('refuses a body framed two ways (%s) before it is judged, and serves the next connection', async (_what, framing) => {
    const url = new URL(stack.server('k8s'));
    const socket = tlsConnect({ host: url.hostname, port: Number(url.port), ca: readFileSync(stack.caFile('k8s')) });
    await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
    let answer = '';
    socket.on('data', (c: Buffer) => (answer += c.toString('latin1')));
    socket.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write(`POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${alice}\r\ncontent-type: application/json\r\n${framing}GET /api/v1/namespaces/default/secrets/db-credentials HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${alice}\r\n\r\n`);
    await closed;
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer.match(/HTTP\/1\.1 /g)).toHaveLength(1);
    expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toMatchObject({ kind: 'Status', message: 'twokey: the request could not be read as HTTP' });
    expect((await agentRequest(stack, 'k8s', 'GET', '/api/v1/namespaces/default/pods', { authorization: `Bearer ${alice}` })).status).toBe(200);
  });

  it.each(['Exec', 'execute', 'exec.', 'attach2'])('refuses a stream upgrade to the odd subresource %s as unknown, sending nothing upstream', async (sub) => {
    const res = await agentRequest(stack, 'k8s', 'GET', `/api/v1/namespaces/default/pods/web-1/${sub}?command=sh&stdout=true`, webSocketUpgrade('v5.channel.k8s.io'));
    expect(res.status).toBe(403);
    expect(JSON.parse(res.body)).toMatchObject({ kind: 'Status', message: 'twokey: unknown denied by rule support' });
    expect(fixture.state.requests.some((r) => r.path.endsWith(`/${sub}`))).toBe(false);
  });

  it('refuses a protobuf body that hides a field the reviewer would not be shown, asking nobody and sending nothing upstream', async () => {
    const before = fixture.state.requests.length;
    const smuggled = envelope('v1', 'ConfigMap', Buffer.concat([bytesField(1, objectMeta('smuggled-config')), entry(2, 'shown', 'yes'), bytesField(9, 'a field no reviewer sees')]));
    const res = await agentRequest(stack, 'k8s', 'POST', '/api/v1/namespaces/default/configmaps', { authorization: `Bearer ${alice}`, 'content-type': 'application/vnd.kubernetes.protobuf' }, smuggled);
    expect(res.status).toBe(415);
    expect(JSON.parse(res.body)).toMatchObject({ kind: 'Status', reason: 'UnsupportedMediaType', message: expect.stringContaining('twokey: the protobuf body cannot be read: ConfigMap has a field (9) the agent does not know') });
    const twice = envelope('v1', 'Secret', Buffer.concat([bytesField(1, objectMeta('retyped')), bytesField(3, 'Opaque'), bytesField(3, 'kubernetes.io/service-account-token')]));
    const again = await agentRequest(stack, 'k8s', 'POST', '/api/v1/namespaces/default/secrets', { authorization: `Bearer ${alice}`, 'content-type': 'application/vnd.kubernetes.protobuf' }, twice);
    expect(again.status).toBe(415);
    expect(readOutbox(stack.cp.outboxDir).some((m) => m.text.includes('smuggled-config') || m.text.includes('retyped'))).toBe(false);
    // Only this test's requests: other tests create objects directly with kubectl (protobuf, on the write token).
    expect(fixture.state.requests.slice(before).some((r) => r.method === 'POST' && (r.path.endsWith('/configmaps') || r.path.endsWith('/secrets')))).toBe(false);
  });

  it('refuses a terminal WebSocket offering a subprotocol that is no token before asking anyone', async () => {
    const res = await agentRequest(stack, 'k8s', 'GET', '/api/v1/namespaces/default/pods/web-1/exec?command=sh&stdout=true&container=odd-protocol', webSocketUpgrade('v5.channel.k8s.io, v4/channel'));
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toMatchObject({ kind: 'Status', message: 'twokey: the WebSocket subprotocol "v4/channel" is not a token' });
    expect(readOutbox(stack.cp.outboxDir).some((m) => m.text.includes('odd-protocol'))).toBe(false);
  });

  it('closes an approved exec over SPDY whose frames cannot be read, rather than relay a terminal it cannot record', async () => {
    const path = '/api/v1/namespaces/default/pods/web-1/exec?command=sh&stdin=true&stdout=true&container=web&unreadable=spdy';
    const upgrade = async (frames: Buffer): Promise<{ answer: string; closed: boolean }> => {
      const url = new URL(stack.server('k8s'));
      const socket = tlsConnect({ host: url.hostname, port: Number(url.port), ca: readFileSync(stack.caFile('k8s')) });
      await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
      let answer = '';
      socket.on('data', (c: Buffer) => {
        answer += c.toString('latin1');
        if (answer.startsWith('HTTP/1.1 101 ')) socket.write(frames);
      });
      socket.on('error', () => undefined);
      const closed = new Promise<boolean>((resolve) => socket.once('close', () => resolve(true)));
      socket.write(`POST ${path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${alice}\r\nconnection: Upgrade\r\nupgrade: SPDY/3.1\r\nx-stream-protocol-version: v4.channel.k8s.io\r\n\r\n`);
      let timer: NodeJS.Timeout | undefined;
      const ended = await Promise.race([closed, new Promise<boolean>((r) => (timer = setTimeout(() => r(false), 10_000)))]);
      clearTimeout(timer);
      return { answer, closed: ended };
    };
    const first = await upgrade(Buffer.alloc(0));
    expect(first.answer).toMatch(/^HTTP\/1\.1 403 [\s\S]*approval required/);
    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', 'unreadable=spdy', new Set(), 30_000);
    expect((await postDecision(mail.link, mail.token, 'approve')).status).toBe(200);
    // The head of a data frame over the agent's frame limit (the fixture, like SPDY, would wait for its 2 MiB).
    const oversized = Buffer.from([0x00, 0x00, 0x00, 0x01, 0x00, 0x20, 0x00, 0x00]);
    const granted = await waitFor(async () => {
      const r = await upgrade(oversized);
      return r.answer.startsWith('HTTP/1.1 101 ') ? r : undefined;
    }, 20_000, 'the approved upgrade');
    expect(granted.closed).toBe(true);
    expect(fixture.state.requests.filter((r) => r.query.includes('unreadable=spdy')).map((r) => `${r.user ?? ''} ${r.status ?? ''}`)).toEqual(['system:serviceaccount:twokey:writer 101']);
  });

  it('bounds the watches one caller holds open, and keeps serving others meanwhile', async () => {
    const url = new URL(stack.server('k8s'));
    const ca = readFileSync(stack.caFile('k8s'));
    const watches: ClientRequest[] = [];
    const open = () =>
      new Promise<number>((resolve, reject) => {
        const req = httpsRequest({ hostname: url.hostname, port: url.port, path: '/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=120', headers: { authorization: `Bearer ${alice}` }, ca, agent: false }, (res) => resolve(res.statusCode ?? 0));
        req.once('error', reject);
        req.end();
        watches.push(req);
      });
    try {
      const opened = await Promise.all(Array.from({ length: MAX_REQUESTS_IN_FLIGHT_PER_CALLER }, open));
      expect(opened.every((code) => code === 200)).toBe(true);
      const refused = await agentRequest(stack, 'k8s', 'GET', '/api/v1/namespaces/default/pods', { authorization: `Bearer ${alice}` });
      expect(refused.status).toBe(429);
      expect(JSON.parse(refused.body)).toMatchObject({ kind: 'Status', reason: 'TooManyRequests', message: expect.stringMatching(/^twokey: you have 64 requests in flight/) });
      const carol = await stack.token('carol', ['support']);
      expect((await agentRequest(stack, 'k8s', 'GET', '/api/v1/namespaces/default/pods', { authorization: `Bearer ${carol}` })).status).toBe(200);
    } finally {
      for (const w of watches) w.destroy();
    }
    await waitFor(async () => ((await agentRequest(stack, 'k8s', 'GET', '/api/v1/namespaces/default/pods', { authorization: `Bearer ${alice}` })).status === 200 ? true : undefined), 30_000, 'alice served again once her watches closed');
  }, 90_000);

  describe('reads that try to reach a Secret unmasked', () => {
    const PLAIN = 'Direct-Pa55-kept-upstream';
    const leaks = (text: string) => text.includes(PLAIN) || text.includes(Buffer.from(PLAIN).toString('base64'));
    const get = (path: string, headers: Record<string, string> = {}) => agentRequest(stack, 'k8s', 'GET', path, { authorization: `Bearer ${alice}`, ...headers });

    beforeAll(async () => {
      const manifest = join(stack.dataDir, 'direct-secret.yaml');
      // kubectl's client-side apply keeps the manifest, values and all, in an annotation.
      writeFileSync(manifest, `apiVersion: v1\nkind: Secret\nmetadata: { name: direct-secret, namespace: default }\nstringData: { token: ${PLAIN} }\n`);
      expect((await direct(['apply', '-f', manifest])).code).toBe(0);
    });

    it.each([
      ['a canonical get', '/api/v1/namespaces/default/secrets/direct-secret', {}],
      ['a pretty-printed get', '/api/v1/namespaces/default/secrets/direct-secret?pretty=true', {}],
      ['an encoded resource name', '/api/v1/namespaces/default/secret%73/direct-secret', {}],
      ['a doubled leading slash', '//api/v1/namespaces/default/secrets/direct-secret', {}],
      ['a trailing slash', '/api/v1/namespaces/default/secrets/direct-secret/', {}],
      ['a list across namespaces', '/api/v1/secrets', {}],
      ['a Table with whole objects', '/api/v1/namespaces/default/secrets?includeObject=Object', { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' }],
      ['metadata only', '/api/v1/namespaces/default/secrets', { accept: 'application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io' }],
      ['protobuf asked first, in odd case', '/api/v1/namespaces/default/secrets/direct-secret', { accept: 'Application/Vnd.Kubernetes.Protobuf, application/json' }],
      ['YAML asked', '/api/v1/namespaces/default/secrets/direct-secret', { accept: 'application/yaml' }],
      ['gzip asked', '/api/v1/namespaces/default/secrets/direct-secret', { 'accept-encoding': 'gzip' }],
      ['a watch by query', '/api/v1/namespaces/default/secrets?watch=1&timeoutSeconds=1', {}],
      ['a watch by path', '/api/v1/watch/namespaces/default/secrets?timeoutSeconds=1', {}],
      ['a watch of one name', '/api/v1/namespaces/default/secrets?watch=true&fieldSelector=metadata.name%3Ddirect-secret&timeoutSeconds=1', {}],
    ])('masks %s', async (_what, path, headers) => {
      const res = await get(path, headers);
      expect(res.status).toBe(200);
      expect(res.headers['content-encoding']).toBeUndefined();
      expect(res.body).toContain('direct-secret');
      expect(leaks(res.body)).toBe(false);
    });

    it.each([
      ['an upper-case prefix (not the API, so not a read)', '/API/v1/namespaces/default/secrets/direct-secret', {}, 403],
      ['a dot segment', '/api/v1/namespaces/default/secrets/./direct-secret', {}, 400],
      ['an encoded slash', '/api/v1/namespaces/default%2Fsecrets/direct-secret', {}, 400],
      ['a ";" parameter', '/api/v1/namespaces/default/secrets/direct-secret?pretty=1;watch=1', {}, 400],
      ['a method override', '/api/v1/namespaces/default/secrets/direct-secret', { 'X-HTTP-Method-Override': 'DELETE' }, 400],
      ['an impersonation header in odd case', '/api/v1/namespaces/default/secrets/direct-secret', { 'iMPERSONATE-user': 'system:admin' }, 403],
      ['a watch over WebSocket', '/api/v1/namespaces/default/secrets?watch=true', { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' }, 403],
    ])('refuses %s', async (_what, path, headers, status) => {
      const res = await get(path, headers);
      expect(res.status).toBe(status);
      expect(JSON.parse(res.body)).toMatchObject({ kind: 'Status', message: expect.stringMatching(/^twokey: /) });
      expect(leaks(res.body)).toBe(false);
    });
  });
});
