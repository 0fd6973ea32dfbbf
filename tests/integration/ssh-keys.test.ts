import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAgent, type RunningAgent } from '../../agent/agent';
import type { AgentConfig } from '../../agent/config';
import { parsePublicKeyLine, type SshPublicKey } from '../../core/ssh/public-key';
import { sshString } from '../../core/ssh/wire';
import { principalKey } from '../../core/identity/identity';
import { addSshKey, MAX_SSH_KEY_TTL_SECONDS, MAX_SSH_KEYS_PER_PRINCIPAL, sshKeysMessages } from '../../lambdas/domain/ssh-keys';
import { getRuntime } from '../../lambdas/shared/runtime';
import { MAX_FRAME_BYTES, SSH_KEYS_UNAVAILABLE, type ControlMessage } from '../../core/tunnel/messages';
import { SSH_KEY_PARTITION } from '../../lambdas/store/ssh-key-store';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/aws/credentials';
import type { LocalControlPlane } from '../../local/control-plane';
import { devIssuerConfig } from '../../local/oidc/dev-issuer';
import { api, startTestControlPlane, TEST_POLICY, tokenFor, waitFor } from '../support/control-plane';
import { withAdmins } from '../support/policy-change';
import { provenKeyBody, sshKeygen, tempKeyDir, tokenIdentity, type GeneratedKey } from '../support/ssh-keygen';

const quietLog = { info: () => undefined, warn: () => undefined, error: () => undefined };
const stubListener = { postgres: async (t: AgentConfig['targets'][number]) => ({ target: t.name, endpoint: 'none', stop: async () => undefined }) };
const json = { 'content-type': 'application/json' };

function parsed(line: string): SshPublicKey {
  const key = parsePublicKeyLine(line);
  if (!key.ok) throw key.error;
  return key.value;
}

describe('registered SSH keys: HTTP API, DynamoDB, and the agent over the tunnel', () => {
  const keys = tempKeyDir();
  let cp: LocalControlPlane;
  let agent: RunningAgent;
  let raw: DynamoDBDocumentClient;
  let alice: string;
  let bob: string;
  /** Registers a key made by ssh-keygen with its proof of possession, or sends a bare line (refused before any proof is looked at). */
  const add = (token: string, key: GeneratedKey | string, ttlSeconds?: number) =>
    api(cp, token, 'POST', '/ssh-keys', JSON.stringify({ ...(typeof key === 'string' ? { publicKey: key } : provenKeyBody(key, tokenIdentity(token))), ttlSeconds }), json);
  const remove = (token: string, key: string) => api(cp, token, 'DELETE', `/ssh-keys?key=${encodeURIComponent(key)}`);
  const startEdgeAgent = (heartbeatIntervalMs?: number) =>
    startAgent(
      {
        name: 'edge-1',
        controlPlane: { url: cp.wsUrl, keyEnv: 'TEST_SSH_KEYS_AGENT_KEY' },
        stateDir: mkdtempSync(join(tmpdir(), 'tk-agent-')),
        identity: { issuers: [devIssuerConfig(cp.issuer, 'data')] },
        targets: [{ name: 'orders-db', protocol: 'postgres', listen: { host: '127.0.0.1', port: 0 }, upstream: { host: '127.0.0.1', port: 5432 }, readCredential: { user: 'r' }, writeCredential: { user: 'w' } }],
      },
      { listenerFactories: stubListener, log: quietLog, heartbeatIntervalMs },
    );

  beforeAll(async () => {
    cp = await startTestControlPlane();
    raw = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: cp.dynamo.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS }));
    const root = await tokenFor(cp, 'root', ['admin']);
    expect((await api(cp, root, 'PUT', '/policies', withAdmins(TEST_POLICY, cp.issuer), { 'if-match': '"0"' })).status).toBe(200);
    process.env.TEST_SSH_KEYS_AGENT_KEY = (await api(cp, root, 'POST', '/agents', JSON.stringify({ name: 'edge-1' }))).body.key as string;
    alice = await tokenFor(cp, 'alice', ['support']);
    bob = await tokenFor(cp, 'bob', ['dba']);
    agent = await startEdgeAgent();
    await waitFor(() => agent.policy.policy, 10_000, 'policy');
  });
  afterAll(async () => {
    await agent?.stop();
    raw?.destroy();
    await cp?.stop();
    keys.remove();
  });

  it('registers a key for its caller, stores its fingerprint as ssh-keygen prints it, and the agent then knows who it is', async () => {
    const made = sshKeygen(keys.dir, 'ed25519', undefined, 'alice1');
    const key = parsed(made.publicLine);
    const added = await add(alice, made);
    expect(added.status).toBe(201);
    expect(added.body).toMatchObject({ fingerprint: made.fingerprint, type: 'ssh-ed25519', comment: 'alice1@test', id: expect.stringMatching(/^[0-9a-f]{12}$/) });
    const expiresInMs = Date.parse(added.body.expiresAt as string) - Date.now();
    expect(expiresInMs).toBeGreaterThan(8 * 3600_000 - 60_000);
    expect(expiresInMs).toBeLessThanOrEqual(8 * 3600_000);
    const stored = (await raw.send(new GetCommand({ TableName: cp.dynamo.tableNames.sshKeys, Key: { keySet: SSH_KEY_PARTITION, fingerprint: made.fingerprint } }))).Item;
    expect(stored).toMatchObject({ principal: principalKey({ issuer: cp.issuer, subject: 'alice' }), groups: ['support'], ttl: Math.ceil(Date.parse(added.body.expiresAt as string) / 1000) });
    const who = await waitFor(() => agent.context.registeredKeys.lookup('ssh-ed25519', key.blob), 5_000, 'the key at the agent');
    expect(who).toMatchObject({ issuer: cp.issuer, subject: 'alice', groups: ['support'] });
    expect(agent.context.registeredKeys.lookup('ssh-ed25519', key.blob, Date.parse(added.body.expiresAt as string))).toBeUndefined();
  });

  it("lists only the caller's own keys", async () => {
    const mine = await api(cp, alice, 'GET', '/ssh-keys');
    expect((mine.body.keys as { comment: string }[]).map((k) => k.comment)).toEqual(['alice1@test']);
    expect((await api(cp, bob, 'GET', '/ssh-keys')).body.keys).toEqual([]);
  });

  it("refuses to remove another person's key, by fingerprint or by id, and keeps it", async () => {
    const [aliceKey] = (await api(cp, alice, 'GET', '/ssh-keys')).body.keys as { id: string; fingerprint: string }[];
    expect((await remove(bob, aliceKey?.fingerprint ?? '')).status).toBe(404);
    expect((await remove(bob, aliceKey?.id ?? '')).status).toBe(404);
    expect((await api(cp, alice, 'GET', '/ssh-keys')).body.keys).toHaveLength(1);
  });

  it("refuses to register someone else's public key to another identity while theirs is unexpired", async () => {
    const [aliceKey] = (await api(cp, alice, 'GET', '/ssh-keys')).body.keys as { fingerprint: string }[];
    const line = (await raw.send(new GetCommand({ TableName: cp.dynamo.tableNames.sshKeys, Key: { keySet: SSH_KEY_PARTITION, fingerprint: aliceKey?.fingerprint } }))).Item?.publicKey as string;
    // Bob holds a copy of alice's private key: he can prove possession, and still not take her registration.
    const taken = await add(bob, { privateKeyFile: join(keys.dir, 'alice1'), publicLine: line, fingerprint: aliceKey?.fingerprint ?? '' });
    expect(taken).toMatchObject({ status: 409, body: { error: { code: 'key_taken' } } });
  });

  it.each([
    ['bad base64', 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5!!!!', /base64|expected one line/],
    ['a DSA key', `ssh-dss ${Buffer.concat([sshString('ssh-dss'), sshString(Buffer.alloc(129, 1))]).toString('base64')}`, /DSA keys are refused/],
    ['a 1024-bit RSA key', (() => {
      const n = Buffer.from(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' }).n as string, 'base64url');
      return `ssh-rsa ${Buffer.concat([sshString('ssh-rsa'), sshString(Buffer.from([1, 0, 1])), sshString(Buffer.concat([Buffer.from([0]), n]))]).toString('base64')}`;
    })(), /shorter than 2048 bits/],
    ['an oversized key line', `ssh-rsa ${'A'.repeat(20_000)}`, /at most 8192 bytes/],
  ])('refuses %s with a 400 that says why', async (_name, line, why) => {
    const refused = await add(alice, line);
    expect(refused.status).toBe(400);
    expect((refused.body.error as { message: string }).message).toMatch(why);
  });

  it('refuses a key without a proof of possession, or with one signed by another key, with a 400 that says why', async () => {
    const made = sshKeygen(keys.dir, 'ed25519', undefined, 'alice-unproven');
    const bare = await add(alice, made.publicLine);
    expect(bare).toMatchObject({ status: 400, body: { error: { message: expect.stringContaining('signedAt and signature must prove possession of the private key') } } });
    const other = sshKeygen(keys.dir, 'ed25519', undefined, 'alice-other');
    const forged = provenKeyBody(made, tokenIdentity(alice), { signer: other.privateKeyFile });
    const refused = await api(cp, alice, 'POST', '/ssh-keys', JSON.stringify(forged), json);
    expect(refused).toMatchObject({ status: 400, body: { error: { message: 'no proof of possession of the private key: the signature was made by another key' } } });
    // A proof made for alice does not register the key for bob.
    const forAlice = await api(cp, bob, 'POST', '/ssh-keys', JSON.stringify(provenKeyBody(made, tokenIdentity(alice))), json);
    expect(forAlice).toMatchObject({ status: 400, body: { error: { message: 'no proof of possession of the private key: the signature does not verify' } } });
    expect((await api(cp, alice, 'GET', '/ssh-keys')).body.keys).not.toContainEqual(expect.objectContaining({ fingerprint: made.fingerprint }));
  });

  it('refuses a TTL above the maximum and a body without a key', async () => {
    const made = sshKeygen(keys.dir, 'ed25519', undefined, 'alice-ttl');
    expect((await add(alice, made, MAX_SSH_KEY_TTL_SECONDS + 1)).status).toBe(400);
    expect((await api(cp, alice, 'POST', '/ssh-keys', '{}', json)).status).toBe(400);
    expect((await api(cp, undefined, 'GET', '/ssh-keys')).status).toBe(401);
  });

  it.each([
    ['more groups than agents take', Array.from({ length: 101 }, (_, i) => `g${i}`)],
    ['a group name longer than agents take', ['g'.repeat(129)]],
  ])('refuses the key of an identity with %s (it would spoil the frame it is sent in)', async (_name, groups) => {
    const odd = await tokenFor(cp, 'frank', groups);
    const refused = await add(odd, sshKeygen(keys.dir, 'ed25519', undefined, `frank${groups.length}`));
    expect(refused.status).toBe(400);
    expect((refused.body.error as { message: string }).message).toMatch(/cannot be sent to agents: groups/);
  });

  it(`refuses an identity's key beyond ${MAX_SSH_KEYS_PER_PRINCIPAL}`, async () => {
    const carol = await tokenFor(cp, 'carol', []);
    for (let i = 0; i < MAX_SSH_KEYS_PER_PRINCIPAL; i++) expect((await add(carol, sshKeygen(keys.dir, 'ed25519', undefined, `carol${i}`))).status).toBe(201);
    const over = await add(carol, sshKeygen(keys.dir, 'ed25519', undefined, 'carol-over'));
    expect(over.status).toBe(400);
    expect((over.body.error as { message: string }).message).toMatch(/at most 10 SSH keys/);
  });

  it(`keeps an identity to ${MAX_SSH_KEYS_PER_PRINCIPAL} keys when its registrations race`, async () => {
    const racer = await tokenFor(cp, 'racer', []);
    const made = Array.from({ length: MAX_SSH_KEYS_PER_PRINCIPAL + 6 }, (_, i) => sshKeygen(keys.dir, 'ed25519', undefined, `racer${i}`));
    const statuses = (await Promise.all(made.map((key) => add(racer, key)))).map((r) => r.status);
    const listed = (await api(cp, racer, 'GET', '/ssh-keys')).body.keys as unknown[];
    expect(listed.length).toBeLessThanOrEqual(MAX_SSH_KEYS_PER_PRINCIPAL);
    expect(statuses.filter((s) => s === 201)).toHaveLength(listed.length);
    expect(statuses.filter((s) => s !== 201).every((s) => s === 400)).toBe(true);
  });

  it('removes a key by id: the agent stops matching it', async () => {
    const made = sshKeygen(keys.dir, 'ecdsa', 256, 'alice2');
    const key = parsed(made.publicLine);
    const { body } = await add(alice, made);
    await waitFor(() => agent.context.registeredKeys.lookup('ecdsa-sha2-nistp256', key.blob), 5_000, 'the key at the agent');
    const removed = await remove(alice, body.id as string);
    expect(removed).toMatchObject({ status: 200, body: { removed: { fingerprint: made.fingerprint } } });
    await waitFor(() => agent.context.registeredKeys.lookup('ecdsa-sha2-nistp256', key.blob) === undefined || undefined, 5_000, 'the key gone from the agent');
  });

  it('neither lists nor sends an expired key, and lets another identity register it then', async () => {
    const made = sshKeygen(keys.dir, 'ed25519', undefined, 'expired');
    const key = parsed(made.publicLine);
    const past = new Date(Date.now() - 1000).toISOString();
    await raw.send(
      new PutCommand({
        TableName: cp.dynamo.tableNames.sshKeys,
        Item: { keySet: SSH_KEY_PARTITION, fingerprint: key.fingerprint, id: 'aaaaaaaaaaaa', principal: principalKey({ issuer: cp.issuer, subject: 'bob' }), keyType: key.type, publicKey: made.publicLine, comment: '', issuer: cp.issuer, subject: 'bob', name: 'bob', groups: ['dba'], createdAt: past, expiresAt: past },
      }),
    );
    expect((await api(cp, bob, 'GET', '/ssh-keys')).body.keys).toEqual([]);
    // A fresh agent gets every unexpired key in its hello: alice's, not bob's expired one.
    const fresh = await startEdgeAgent();
    try {
      await waitFor(() => fresh.context.registeredKeys.size > 0 || undefined, 10_000, 'keys at hello');
      expect(fresh.context.registeredKeys.lookup('ssh-ed25519', key.blob)).toBeUndefined();
      expect(fresh.context.registeredKeys.lookup('ssh-ed25519', parsed(sshKeygen(keys.dir, 'ed25519', undefined, 'unknown').publicLine).blob)).toBeUndefined();
    } finally {
      await fresh.stop();
    }
    expect((await add(alice, made)).status).toBe(201);
    await waitFor(() => agent.context.registeredKeys.lookup('ssh-ed25519', key.blob)?.subject === 'alice' || undefined, 5_000, 'the key taken over');
  });

  it('brings an agent that missed a push up to date within a heartbeat', async () => {
    const watcher = await startEdgeAgent(200);
    try {
      await waitFor(() => watcher.context.registeredKeys.size > 0 || undefined, 10_000, 'keys at hello');
      // A key stored and marked changed with no push, as when a push to this agent was lost.
      const made = sshKeygen(keys.dir, 'ed25519', undefined, 'unpushed');
      const key = parsed(made.publicLine);
      const at = Date.now();
      await raw.send(
        new PutCommand({
          TableName: cp.dynamo.tableNames.sshKeys,
          Item: { keySet: SSH_KEY_PARTITION, fingerprint: key.fingerprint, id: 'bbbbbbbbbbbb', principal: principalKey({ issuer: cp.issuer, subject: 'dave' }), keyType: key.type, publicKey: made.publicLine, comment: '', issuer: cp.issuer, subject: 'dave', name: 'dave', groups: [], createdAt: new Date(at).toISOString(), expiresAt: new Date(at + 3600_000).toISOString() },
        }),
      );
      await raw.send(new PutCommand({ TableName: cp.dynamo.tableNames.sshKeys, Item: { keySet: 'changed', fingerprint: 'changed', changedAt: at + 1 } }));
      expect(await waitFor(() => watcher.context.registeredKeys.lookup('ssh-ed25519', key.blob), 10_000, 'the unpushed key')).toMatchObject({ subject: 'dave' });
    } finally {
      await watcher.stop();
    }
  });

  it('sends keys in as many frames as they need, and an agent told they cannot be sent trusts none until they can', async () => {
    const groups = Array.from({ length: 60 }, (_, i) => `group-${i}-${'g'.repeat(110)}`);
    const erin = await tokenFor(cp, 'erin', groups);
    const made = Array.from({ length: 9 }, (_, i) => sshKeygen(keys.dir, 'ed25519', undefined, `erin${i}`));
    for (const key of made) expect((await add(erin, key)).status).toBe(201);
    const deps = getRuntime('test').deps;
    const parts = await sshKeysMessages(deps);
    expect(parts.length).toBeGreaterThanOrEqual(3);
    for (const part of parts) expect(Buffer.byteLength(JSON.stringify(part))).toBeLessThanOrEqual(MAX_FRAME_BYTES);

    const before = new Set((await deps.connections.list()).map((c) => c.connectionId));
    const watcher = await startEdgeAgent(200);
    try {
      const last = parsed((made[8] as { publicLine: string }).publicLine);
      expect(await waitFor(() => watcher.context.registeredKeys.lookup('ssh-ed25519', last.blob), 10_000, 'every part')).toMatchObject({ subject: 'erin', groups });
      const [unavailable] = await sshKeysMessages(deps, 1);
      expect(unavailable).toMatchObject({ type: 'error', code: SSH_KEYS_UNAVAILABLE });
      const [watcherConnection] = (await deps.connections.list()).filter((c) => !before.has(c.connectionId));
      expect(await deps.push(watcherConnection?.connectionId ?? '', unavailable as ControlMessage)).toBe('sent');
      await waitFor(() => watcher.context.registeredKeys.size === 0 || undefined, 5_000, 'the set cleared');
      await waitFor(() => watcher.context.registeredKeys.lookup('ssh-ed25519', last.blob), 10_000, 'the set back after a heartbeat');
    } finally {
      await watcher.stop();
    }
  });
  it('refuses a key that would make the set too large to send, so that agents keep trusting everyone else\'s', async () => {
    const runtime = getRuntime('test');
    const deps = runtime.deps;
    const limit = (await sshKeysMessages(deps)).length;
    const groups = Array.from({ length: 60 }, (_, i) => `big-${i}-${'b'.repeat(110)}`);
    const frank = await runtime.verifier.verify(await tokenFor(cp, 'frank', groups));
    if (!frank.ok) throw frank.error;
    const outcomes: string[] = [];
    for (let i = 0; i < MAX_SSH_KEYS_PER_PRINCIPAL; i++) {
      const key = sshKeygen(keys.dir, 'ed25519', undefined, `oversize${i}`);
      outcomes.push(await addSshKey(deps, frank.value, provenKeyBody(key, frank.value), limit).then(() => 'added', (e: Error) => e.message));
    }
    expect(outcomes).toContainEqual(expect.stringContaining('as many SSH keys as agents can be sent'));
    const sent = await sshKeysMessages(deps, limit);
    expect(sent.every((m) => m.type === 'ssh.keys')).toBe(true);
  });
});
