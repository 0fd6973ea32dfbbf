import type {
  APIGatewayAuthorizerResult,
  APIGatewayProxyResultV2,
  APIGatewayProxyWebsocketEventV2,
  APIGatewayRequestAuthorizerEvent,
} from 'aws-lambda';
import { authenticateAgent, type AuthenticatedAgent } from './domain/agents';
import { onAgentConnect, onAgentDisconnect, onAgentMessage } from './domain/tunnel';
import { getRuntime } from './shared/runtime';

type WebSocketEventWithAuth = APIGatewayProxyWebsocketEventV2 & {
  requestContext: APIGatewayProxyWebsocketEventV2['requestContext'] & { authorizer?: { agent?: string; keyHash?: string } };
};

const OK: APIGatewayProxyResultV2 = { statusCode: 200 };

function policy(effect: 'Allow' | 'Deny', resource: string, agent: AuthenticatedAgent | undefined): APIGatewayAuthorizerResult {
  return {
    principalId: agent?.name ?? 'anonymous',
    policyDocument: { Version: '2012-10-17', Statement: [{ Action: 'execute-api:Invoke', Effect: effect, Resource: resource }] },
    // The matched key's hash (not the key) lets $connect check that the key still counts.
    context: agent ? { agent: agent.name, keyHash: agent.keyHash } : undefined,
  };
}

/** `$connect` Lambda authorizer: the agent key arrives as `Authorization: Bearer <key>`. */
export async function authorize(event: APIGatewayRequestAuthorizerEvent): Promise<APIGatewayAuthorizerResult> {
  const rt = getRuntime('tunnel');
  const headerValue = Object.entries(event.headers ?? {}).find(([k]) => k.toLowerCase() === 'authorization')?.[1];
  const key = headerValue?.match(/^Bearer\s+(\S+)$/i)?.[1];
  const agent = await authenticateAgent(rt.deps, key);
  return policy(agent ? 'Allow' : 'Deny', event.methodArn, agent);
}

export async function connect(event: WebSocketEventWithAuth): Promise<APIGatewayProxyResultV2> {
  const rt = getRuntime('tunnel');
  const { agent, keyHash } = event.requestContext.authorizer ?? {};
  if (!agent || !keyHash) return { statusCode: 401 };
  return (await onAgentConnect(rt.deps, event.requestContext.connectionId, { name: agent, keyHash })) ? OK : { statusCode: 401 };
}

export async function disconnect(event: APIGatewayProxyWebsocketEventV2): Promise<APIGatewayProxyResultV2> {
  await onAgentDisconnect(getRuntime('tunnel').deps, event.requestContext.connectionId);
  return OK;
}

/** Every message route (`hello`, `policy.get`, `heartbeat`) and `$default`, which answers unknown types with an error. */
export async function message(event: APIGatewayProxyWebsocketEventV2): Promise<APIGatewayProxyResultV2> {
  const rt = getRuntime('tunnel');
  try {
    await onAgentMessage(rt.deps, event.requestContext.connectionId, event.body ?? '');
  } catch (e) {
    rt.deps.log.error('tunnel.message.failed', { connectionId: event.requestContext.connectionId, error: String(e) });
  }
  return OK;
}
