import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { clientLimits } from '../../../lambdas/shared/runtime';
import { readConfig } from '../../../lambdas/shared/config';
import { SDK_MAX_ATTEMPTS, SDK_REQUEST_TIMEOUT_MS } from '../../../lambdas/shared/sdk-limits';
import { TABLES } from '../../../lambdas/store/table-definitions';

describe('AWS SDK limits of the handlers', () => {
  let server: Server;
  let endpoint = '';
  let requests = 0;

  beforeAll(async () => {
    // A service that takes requests and never answers.
    server = createServer(() => void requests++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('fails a request that outlasts its time limit, after the allowed attempts, instead of waiting on it', async () => {
    const client = new DynamoDBClient({ ...clientLimits(200), endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
    const started = Date.now();
    await expect(client.send(new ListTablesCommand({}))).rejects.toThrow(/timeout|timed out/i);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(requests).toBe(SDK_MAX_ATTEMPTS);
    client.destroy();
  });

  it('uses the Lambda limit unless the environment names another', () => {
    const env = { ...Object.fromEntries(Object.values(TABLES).map((t) => [t.envVar, t.logicalName])), RECORDINGS_BUCKET: 'b', OIDC_ISSUERS: JSON.stringify([{ issuer: 'https://i.test/', audience: 'api' }]) };
    expect(readConfig(env).sdkRequestTimeoutMs).toBe(SDK_REQUEST_TIMEOUT_MS);
    expect(readConfig({ ...env, SDK_REQUEST_TIMEOUT_MS: '30000' }).sdkRequestTimeoutMs).toBe(30_000);
    expect(() => readConfig({ ...env, SDK_REQUEST_TIMEOUT_MS: 'soon' })).toThrow(/SDK_REQUEST_TIMEOUT_MS/);
  });
});
