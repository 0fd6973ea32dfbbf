import { ApiGatewayManagementApiClient, GoneException, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SendEmailCommand, SESv2Client } from '@aws-sdk/client-sesv2';
import { ExecutionAlreadyExists, SendTaskSuccessCommand, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { fetchJson } from '../../core/identity/fetch-json';
import { TokenVerifier } from '../../core/identity/verifier';
import { encodeFrame } from '../../core/tunnel/messages';
import type { AgentPusher, ApprovalWorkflow, ControlPlaneDeps, Mailer } from '../domain/deps';
import { DynamoApprovalStore } from '../store/approval-store';
import { DynamoAuditStore, DynamoSessionStore } from '../store/session-store';
import { GetObjectCommand, NoSuchKey, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { RecordingBucket } from '../domain/deps';
import { DynamoAgentStore, DynamoConnectionStore, DynamoPolicyStore } from '../store/dynamo-stores';
import { KnownConnections } from '../store/known-connections';
import { RecentPolicy } from '../store/recent-policy';
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

function workflowFor(sfn: SFNClient, stateMachineArn: string | undefined): ApprovalWorkflow {
  const arn = (): string => {
    if (!stateMachineArn) throw new Error('APPROVAL_STATE_MACHINE_ARN is not configured');
    return stateMachineArn;
  };
  return {
    async start(requestId) {
      try {
        await sfn.send(new StartExecutionCommand({ stateMachineArn: arn(), name: requestId, input: JSON.stringify({ requestId }) }));
      } catch (e) {
        // Same name, same input: the execution exists already, which is what a retried request wants.
        if (!(e instanceof ExecutionAlreadyExists || (e as { name?: string }).name === 'ExecutionAlreadyExists')) throw e;
      }
    },
    async complete(taskToken, output) {
      await sfn.send(new SendTaskSuccessCommand({ taskToken, output: JSON.stringify(output) }));
    },
  };
}

function mailerFor(ses: SESv2Client, from: string): Mailer {
  return {
    async send(mail) {
      await ses.send(
        new SendEmailCommand({
          FromEmailAddress: from,
          Destination: { ToAddresses: [mail.to] },
          Content: { Simple: { Subject: { Data: mail.subject }, Body: { Text: { Data: mail.text }, Html: { Data: mail.html } } } },
        }),
      );
    },
  };
}

/** The link-signing key, read from Secrets Manager once per container. */
function linkKeyFor(secrets: SecretsManagerClient, secretId: string | undefined): () => Promise<Buffer> {
  let key: Promise<Buffer> | undefined;
  return () => {
    key ??= (async () => {
      if (!secretId) throw new Error('LINK_KEY_SECRET_ID is not configured');
      const out = await secrets.send(new GetSecretValueCommand({ SecretId: secretId }));
      if (!out.SecretString || out.SecretString.length < 32) throw new Error('the link-signing secret is missing or too short');
      return Buffer.from(out.SecretString, 'utf8');
    })().catch((e: unknown) => {
      key = undefined;
      throw e;
    });
    return key;
  };
}

function bucketFor(s3: S3Client, bucket: string): RecordingBucket {
  return {
    presignPut: (key, expiresIn) => getSignedUrl(s3, new PutObjectCommand({ Bucket: bucket, Key: key, ContentType: 'application/gzip' }), { expiresIn }),
    presignGet: (key, expiresIn) => getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn }),
    async get(key) {
      try {
        const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        return out.Body ? Buffer.from(await out.Body.transformToByteArray()) : undefined;
      } catch (e) {
        if (e instanceof NoSuchKey || (e as { name?: string }).name === 'NoSuchKey') return undefined;
        throw e;
      }
    },
    async put(key, body, contentType) {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: contentType }));
    },
  };
}

/** No AWS call may hang a handler: bounded connect and request times for every client. */
const REQUEST_HANDLER = { connectionTimeout: 3_000, requestTimeout: 10_000 } as const;

let shared: Runtime | undefined;
/** Each component's view of the shared runtime: the same clients, a logger that names the component. */
const byComponent = new Map<string, Runtime>();

/**
 * SDK clients are built once per Lambda container (or once in local mode) and shared by invocations
 * and by every component in the process; each component gets its own logger.
 */
export function getRuntime(component: string): Runtime {
  const cached = byComponent.get(component);
  if (cached) return cached;
  shared ??= buildRuntime();
  const runtime: Runtime = { ...shared, deps: { ...shared.deps, log: jsonLogger(component) } };
  byComponent.set(component, runtime);
  return runtime;
}

function buildRuntime(): Runtime {
  const config = readConfig();
  const ddb = DynamoDBDocumentClient.from(new DynamoDBClient({ requestHandler: REQUEST_HANDLER }), { marshallOptions: { removeUndefinedValues: true } });
  const management = config.wsManagementEndpoint
    ? new ApiGatewayManagementApiClient({ endpoint: config.wsManagementEndpoint, requestHandler: REQUEST_HANDLER })
    : undefined;
  const policies = new DynamoPolicyStore(ddb, config.tables.policies);
  return {
    config,
    verifier: new TokenVerifier(config.issuers, { fetchJson, nowMs: Date.now }),
    deps: {
      agents: new DynamoAgentStore(ddb, config.tables.agents),
      connections: new KnownConnections(new DynamoConnectionStore(ddb, config.tables.connections)),
      policies,
      recentPolicy: new RecentPolicy(policies, Date.now),
      approvals: new DynamoApprovalStore(ddb, config.tables.approvals),
      sessions: new DynamoSessionStore(ddb, config.tables.sessions),
      audit: new DynamoAuditStore(ddb, config.tables.auditEvents),
      // Checksums only when required: otherwise streamed bodies get aws-chunked framing some S3 stand-ins store verbatim.
      recordings: bucketFor(
        new S3Client({ requestHandler: REQUEST_HANDLER, forcePathStyle: config.s3ForcePathStyle, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' }),
        config.recordingsBucket,
      ),
      workflow: workflowFor(new SFNClient({ requestHandler: REQUEST_HANDLER }), config.stateMachineArn),
      mailer: mailerFor(new SESv2Client({ requestHandler: REQUEST_HANDLER }), config.senderEmail),
      linkKey: linkKeyFor(new SecretsManagerClient({ requestHandler: REQUEST_HANDLER }), config.linkKeySecretId),
      publicUrl: config.publicUrl,
      push: pusherFor(management),
      clock: () => new Date(),
      log: jsonLogger('control-plane'),
    },
  };
}

/** Local mode and tests build a fresh runtime after changing the environment. */
export function resetRuntime(): void {
  shared = undefined;
  byComponent.clear();
}
