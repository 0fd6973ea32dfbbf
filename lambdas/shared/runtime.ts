import { ApiGatewayManagementApiClient, GoneException, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { fetchJson } from '../../core/identity/fetch-json';
import { TokenVerifier } from '../../core/identity/verifier';
import { encodeFrame } from '../../core/tunnel/messages';
import type { AgentPusher, ControlPlaneDeps } from '../domain/deps';
import { DynamoAgentStore, DynamoConnectionStore, DynamoPolicyStore } from '../store/dynamo-stores';
import { readConfig, type ControlPlaneConfig } from './config';
import { jsonLogger } from '../../core/log';

export interface Runtime {
  readonly config: ControlPlaneConfig;
  readonly deps: ControlPlaneDeps;
  readonly verifier: TokenVerifier;
}

function pusherFor(client: ApiGatewayManagementApiClient | undefined): AgentPusher {
  return async (connectionId, message) => {
    if (!client) throw new Error('WS_MANAGEMENT_ENDPOINT is not configured');
    const frame = encodeFrame(message);
    if (!frame.ok) throw frame.error;
    try {
      await client.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: Buffer.from(frame.value) }));
      return 'sent';
    } catch (e) {
      if (e instanceof GoneException || (e as { name?: string }).name === 'GoneException') return 'gone';
      throw e;
    }
  };
}

let runtime: Runtime | undefined;

/** SDK clients are built once per Lambda container (or once in local mode) and shared by invocations. */
export function getRuntime(component: string): Runtime {
  if (runtime) return runtime;
  const config = readConfig();
  const ddb = DynamoDBDocumentClient.from(new DynamoDBClient({}), { marshallOptions: { removeUndefinedValues: true } });
  const management = config.wsManagementEndpoint
    ? new ApiGatewayManagementApiClient({ endpoint: config.wsManagementEndpoint })
    : undefined;
  runtime = {
    config,
    verifier: new TokenVerifier(config.issuers, { fetchJson, nowMs: Date.now }),
    deps: {
      agents: new DynamoAgentStore(ddb, config.tables.agents),
      connections: new DynamoConnectionStore(ddb, config.tables.connections),
      policies: new DynamoPolicyStore(ddb, config.tables.policies),
      push: pusherFor(management),
      clock: () => new Date(),
      log: jsonLogger(component),
    },
  };
  return runtime;
}

/** Local mode and tests build a fresh runtime after changing the environment. */
export function resetRuntime(): void {
  runtime = undefined;
}
