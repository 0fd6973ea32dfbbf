import type { APIGatewayProxyEventV2, APIGatewayRequestAuthorizerEvent, DynamoDBStreamEvent } from 'aws-lambda';
import { importJWK, SignJWT } from 'jose';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as agentsHttp from '../../lambdas/agents-http';
import * as policiesHttp from '../../lambdas/policies-http';
import * as policyStream from '../../lambdas/policy-stream';
import * as tunnelWs from '../../lambdas/tunnel-ws';
import { getRuntime } from '../../lambdas/shared/runtime';
import type { LocalControlPlane } from '../../local/control-plane';
import { DEV_AUDIENCES } from '../../local/oidc/dev-issuer';
import { startTestControlPlane, TEST_POLICY, tokenFor } from '../support/control-plane';

function fixture<T>(name: string): T {
  return JSON.parse(readFileSync(join(__dirname, '../fixtures/events', `${name}.json`), 'utf8')) as T;
}

function withAuth<T extends { headers?: Record<string, string | undefined> }>(event: T, token: string | undefined): T {
  return { ...event, headers: { ...event.headers, ...(token ? { authorization: `Bearer ${token}` } : {}) } };
}

const parse = (body: string | undefined) => JSON.parse(body ?? '{}') as Record<string, any>;

describe('control-plane handlers with API Gateway events', () => {
  let cp: LocalControlPlane;
  let root: string;
  let alice: string;

  beforeAll(async () => {
    // This suite hands the stream handler its own fixture, so the local stream stand-in stays off.
    cp = await startTestControlPlane(undefined, 0, false);
    root = await tokenFor(cp, 'root', ['admin']);
    alice = await tokenFor(cp, 'alice', ['support']);
  });
  afterAll(() => cp.stop());

  describe('PUT /policies', () => {
    const put = (body: string, token: string | undefined, ifMatch = '"0"') =>
      policiesHttp.put(withAuth({ ...fixture<APIGatewayProxyEventV2>('http-put-policies'), body, headers: { ...fixture<APIGatewayProxyEventV2>('http-put-policies').headers, 'if-match': ifMatch } }, token));

    it('refuses a caller without a token (401), and a non-admin (403)', async () => {
      expect((await put(TEST_POLICY, undefined)).statusCode).toBe(401);
      const forbidden = await put(TEST_POLICY, alice);
      expect(forbidden.statusCode).toBe(403);
      expect(parse(forbidden.body).error.code).toBe('forbidden');
    });

    it('refuses a forged token without saying why', async () => {
      const forged = `${root.slice(0, -4)}AAAA`;
      const result = await put(TEST_POLICY, forged);
      expect(result.statusCode).toBe(401);
      expect(parse(result.body)).toEqual({ error: { code: 'unauthorized', message: 'a valid bearer token is required' } });
    });

    it("refuses an admin's data-plane token, and one that names both planes' audiences", async () => {
      const dataToken = await tokenFor(cp, 'root', ['admin'], { audience: 'data' });
      expect((await put(TEST_POLICY, dataToken)).statusCode).toBe(401);
      const both = await new SignJWT({ groups: ['admin'] })
        .setProtectedHeader({ alg: 'ES256', kid: cp.signingKey.kid })
        .setIssuer(cp.issuer)
        .setAudience([DEV_AUDIENCES.api, DEV_AUDIENCES.data])
        .setSubject('root')
        .setExpirationTime('5m')
        .sign(await importJWK(cp.signingKey.privateJwk, 'ES256'));
      expect((await put(TEST_POLICY, both)).statusCode).toBe(401);
    });

    it('rejects an invalid document with 400, the path and the line', async () => {
      const result = await put('targets:\n  - { name: x, protocol: gopher, agent: a }\n', root);
      expect(result.statusCode).toBe(400);
      expect(parse(result.body).error.details[0]).toMatchObject({ path: 'targets.0.protocol', line: 2 });
    });

    it('stores version 1, then refuses a stale writer with 409 and keeps version 1', async () => {
      const first = await put(TEST_POLICY, root, '"0"');
      expect(first.statusCode).toBe(200);
      expect(parse(first.body).version).toBe(1);
      const stale = await put(TEST_POLICY.replace('read: allow', 'read: deny'), root, '"0"');
      expect(stale.statusCode).toBe(409);
      expect(parse(stale.body).error).toMatchObject({ code: 'version_conflict', details: { currentVersion: 1 } });
      const current = await policiesHttp.get(withAuth(fixture<APIGatewayProxyEventV2>('http-get-agents'), root));
      expect(parse(current.body)).toMatchObject({ version: 1, source: TEST_POLICY });
    });
  });

  describe('agents', () => {
    let key: string;

    it('registers an agent, returns its key once and stores only a hash', async () => {
      const created = await agentsHttp.register(withAuth(fixture<APIGatewayProxyEventV2>('http-post-agents'), root));
      expect(created.statusCode).toBe(201);
      key = parse(created.body).key;
      expect(key).toMatch(/^tka_edge-1\./);
      const stored = await getRuntime('test').deps.agents.get('edge-1');
      expect(JSON.stringify(stored)).not.toContain(key.split('.')[1]);
      const again = await agentsHttp.register(withAuth(fixture<APIGatewayProxyEventV2>('http-post-agents'), root));
      expect(again.statusCode).toBe(409);
    });

    it('authorizes $connect with the right key only', async () => {
      const event = fixture<APIGatewayRequestAuthorizerEvent>('ws-authorizer-request');
      const allow = await tunnelWs.authorize({ ...event, headers: { ...event.headers, Authorization: `Bearer ${key}` } });
      expect(allow.policyDocument.Statement[0]?.Effect).toBe('Allow');
      expect(allow.context).toEqual({ agent: 'edge-1', keyHash: (await getRuntime('test').deps.agents.get('edge-1'))?.keyHash });
      expect(JSON.stringify(allow)).not.toContain(key.split('.')[1]);
      for (const bad of [undefined, `${key}x`, 'tka_edge-2.abc', 'Basic xyz']) {
        const deny = await tunnelWs.authorize({ ...event, headers: { ...event.headers, ...(bad ? { Authorization: `Bearer ${bad}` } : {}) } });
        expect(deny.policyDocument.Statement[0]?.Effect).toBe('Deny');
      }
    });

    /** The $connect event as API Gateway passes it on after the authorizer admitted `keyHash`. */
    const connectEvent = (keyHash: string | undefined, connectionId = 'conn-1=') => {
      const event = fixture<Parameters<typeof tunnelWs.connect>[0]>('ws-connect');
      return { ...event, requestContext: { ...event.requestContext, connectionId, authorizer: { agent: 'edge-1', keyHash } } };
    };

    it('refuses $connect when the key was replaced after the authorizer admitted it', async () => {
      const result = await tunnelWs.connect(connectEvent('0'.repeat(64), 'conn-stale='));

      expect(result).toEqual({ statusCode: 401 });
      expect(await getRuntime('test').deps.connections.get('conn-stale=')).toBeUndefined();
    });

    it('records a connection and accepts only the targets the policy assigns in hello', async () => {
      expect(await tunnelWs.connect(connectEvent((await getRuntime('test').deps.agents.get('edge-1'))?.keyHash))).toEqual({ statusCode: 200 });
      await tunnelWs.message(fixture('ws-message-hello'));
      const listed = await agentsHttp.list(withAuth(fixture<APIGatewayProxyEventV2>('http-get-agents'), root));
      expect(parse(listed.body).agents).toEqual([
        expect.objectContaining({ name: 'edge-1', connected: true, targets: ['orders-db'], assignedTargets: ['orders-db'] }),
      ]);
    });

    it('forgets a connection that is gone when a policy is pushed from the stream', async () => {
      const event = fixture<DynamoDBStreamEvent>('dynamodb-stream-policy-insert');
      const image = event.Records[0]?.dynamodb?.NewImage;
      if (image) image.source = { S: TEST_POLICY };
      await policyStream.handler(event);
      expect(await getRuntime('test').deps.connections.get('conn-1=')).toBeUndefined();
      const listed = await agentsHttp.list(withAuth(fixture<APIGatewayProxyEventV2>('http-get-agents'), root));
      expect(parse(listed.body).agents[0].connected).toBe(false);
    });

    it('rejects a bad agent name with 400 and never echoes internals on failure', async () => {
      const bad = await agentsHttp.register(withAuth({ ...fixture<APIGatewayProxyEventV2>('http-post-agents'), body: '{"name":"../etc"}' }, root));
      expect(bad.statusCode).toBe(400);
      const notJson = await agentsHttp.register(withAuth({ ...fixture<APIGatewayProxyEventV2>('http-post-agents'), body: '{' }, root));
      expect(parse(notJson.body).error.code).toBe('invalid_request');
    });
  });
});
