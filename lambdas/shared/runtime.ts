import { ApiGatewayManagementApiClient, DeleteConnectionCommand, GoneException, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SendEmailCommand, SESv2Client } from '@aws-sdk/client-sesv2';
import { ExecutionAlreadyExists, SendTaskSuccessCommand, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { fetchJson } from '../../core/identity/fetch-json';
import { TokenVerifier } from '../../core/identity/verifier';
import { encodeFrame } from '../../core/tunnel/messages';
import type { AgentDisconnector, AgentPusher, ApprovalWorkflow, ControlPlaneDeps, Mailer, TokenSigner } from '../domain/deps';
import { DynamoApprovalStore } from '../store/approval-store';
import { DynamoAuditStore, DynamoChunkStore, DynamoSessionStore } from '../store/session-store';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { MAX_CHUNKS_PER_SESSION } from '../domain/sessions';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { RecordingBucket } from '../domain/deps';
import { DynamoAgentStore, DynamoConnectionStore, DynamoPolicyStore } from '../store/dynamo-stores';
import { KnownConnections } from '../store/known-connections';
import { RecentPolicy } from '../store/recent-policy';
import { DynamoSshKeyStore } from '../store/ssh-key-store';
import { controlPlaneIssuer, readConfig, type ControlPlaneConfig, type TokenSignerConfig } from './config';
import { slackWebApi } from './slack-web-api';
import { jwkTokenSigner, kmsTokenSigner } from './token-signer';
import { KMSClient } from '@aws-sdk/client-kms';
import { DynamoSamlStore } from '../store/saml-store';
import { DynamoSlackPostStore } from '../store/slack-post-store';
import { SDK_CONNECTION_TIMEOUT_MS, SDK_MAX_ATTEMPTS } from './sdk-limits';
import { jsonLogger } from '../../core/log';

export interface Runtime {
  readonly config: ControlPlaneConfig;
  readonly deps: ControlPlaneDeps;
  readonly verifier: TokenVerifier;
}

const isGone = (e: unknown): boolean => e instanceof GoneException || (e as { name?: string }).name === 'GoneException';

function pusherFor(client: ApiGatewayManagementApiClient | undefined): AgentPusher {
  return async (connectionId, message) => {
    if (!client) throw new Error('WS_MANAGEMENT_ENDPOINT is not configured');
    const frame = encodeFrame(message);
    if (!frame.ok) throw frame.error;
    try {
      await client.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: Buffer.from(frame.value) }));
      return 'sent';
    } catch (e) {
      if (isGone(e)) return 'gone';
      throw e;
    }
  };
}

function disconnectorFor(client: ApiGatewayManagementApiClient | undefined): AgentDisconnector {
  return async (connectionId) => {
    if (!client) throw new Error('WS_MANAGEMENT_ENDPOINT is not configured');
    try {
      await client.send(new DeleteConnectionCommand({ ConnectionId: connectionId }));
      return 'closed';
    } catch (e) {
      if (isGone(e)) return 'gone';
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

/** A secret's value, read from Secrets Manager once per container (again after a failed read). */
function secretFor(secrets: SecretsManagerClient, secretId: string | undefined, what: string, minLength: number): () => Promise<string> {
  let value: Promise<string> | undefined;
  return () => {
    value ??= (async () => {
      if (!secretId) throw new Error(`the ${what} secret is not configured`);
      const out = await secrets.send(new GetSecretValueCommand({ SecretId: secretId }));
      if (!out.SecretString || out.SecretString.length < minLength) throw new Error(`the ${what} secret is missing or too short`);
      return out.SecretString;
    })().catch((e: unknown) => {
      value = undefined;
      throw e;
    });
    return value;
  };
}

/** Shortest secrets accepted: the link key is ours (32 random bytes); Slack's signing secret is 32 hex characters. */
const MIN_LINK_KEY_CHARS = 32;
const MIN_SLACK_SECRET_CHARS = 32;

/** S3 reads checksums as base64 of the digest's bytes; the chain keeps them as hex. */
const base64OfHex = (hex: string): string => Buffer.from(hex, 'hex').toString('base64');
/** What one ListObjectsV2 call returns at most. */
const S3_LIST_KEYS_PER_PAGE = 1000;
/** Keys of one session's prefix: at most MAX_CHUNKS_PER_SESSION and the manifest. */
const MAX_LIST_PAGES = Math.ceil(MAX_CHUNKS_PER_SESSION / S3_LIST_KEYS_PER_PAGE) + 1;

function bucketFor(s3: S3Client, bucket: string): RecordingBucket {
  return {
    // The checksum header stays a signed header (not a query parameter): the uploader must send it, and S3 checks the body against it.
    presignPut: (key, expiresIn, content) =>
      getSignedUrl(s3, new PutObjectCommand({ Bucket: bucket, Key: key, ContentType: 'application/gzip', ContentLength: content.bytes, ChecksumSHA256: base64OfHex(content.sha256) }), {
        expiresIn,
        unhoistableHeaders: new Set(['x-amz-checksum-sha256']),
      }),
    presignGet: (key, expiresIn) => getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn }),
    async sizes(prefix) {
      const sizes = new Map<string, number>();
      let token: string | undefined;
      for (let page = 0; page < MAX_LIST_PAGES; page++) {
        const out = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
        for (const o of out.Contents ?? []) if (o.Key !== undefined) sizes.set(o.Key, o.Size ?? 0);
        token = out.NextContinuationToken;
        if (!token) return sizes;
      }
      throw new Error(`more than ${MAX_LIST_PAGES} pages of objects under ${prefix}`);
    },
    async putOnce(key, body, contentType) {
      try {
        const sha256 = createHash('sha256').update(body).digest('base64');
        await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: contentType, ChecksumSHA256: sha256, IfNoneMatch: '*' }));
        return 'written';
      } catch (e) {
        if ((e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 412) return 'exists';
        throw e;
      }
    },
  };
}

/**
 * No AWS call may hang a handler: bounded connect and request times (a request past its time fails,
 * which the SDK otherwise only logs), and attempts, for every client.
 */
export const clientLimits = (requestTimeoutMs: number) =>
  ({ requestHandler: { connectionTimeout: SDK_CONNECTION_TIMEOUT_MS, requestTimeout: requestTimeoutMs, throwOnRequestTimeout: true }, maxAttempts: SDK_MAX_ATTEMPTS }) as const;

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
  const limits = clientLimits(config.sdkRequestTimeoutMs);
  const ddb = DynamoDBDocumentClient.from(new DynamoDBClient(limits), { marshallOptions: { removeUndefinedValues: true } });
  const management = config.wsManagementEndpoint
    ? new ApiGatewayManagementApiClient({ ...limits, endpoint: config.wsManagementEndpoint })
    : undefined;
  const policies = new DynamoPolicyStore(ddb, config.tables.policies);
  const secrets = new SecretsManagerClient(limits);
  const linkKey = secretFor(secrets, config.linkKeySecretId, 'link-signing', MIN_LINK_KEY_CHARS);
  return {
    config,
    verifier: new TokenVerifier(config.issuers, { fetchJson, nowMs: Date.now }),
    deps: {
      agents: new DynamoAgentStore(ddb, config.tables.agents),
      connections: new KnownConnections(new DynamoConnectionStore(ddb, config.tables.connections)),
      policies,
      recentPolicy: new RecentPolicy(policies, Date.now),
      approvals: new DynamoApprovalStore(ddb, config.tables.approvals, config.tables.approvalInbox),
      sessions: new DynamoSessionStore(ddb, config.tables.sessions),
      chunks: new DynamoChunkStore(ddb, config.tables.recordingChunks),
      audit: new DynamoAuditStore(ddb, config.tables.auditEvents),
      sshKeys: new DynamoSshKeyStore(ddb, config.tables.sshKeys),
      // Checksums only when required: otherwise streamed bodies get aws-chunked framing some S3 stand-ins store verbatim.
      recordings: bucketFor(
        new S3Client({ ...limits, forcePathStyle: config.s3ForcePathStyle, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' }),
        config.recordingsBucket,
      ),
      workflow: workflowFor(new SFNClient(limits), config.stateMachineArn),
      mailer: mailerFor(new SESv2Client(limits), config.senderEmail),
      linkKey: async () => Buffer.from(await linkKey(), 'utf8'),
      publicUrl: config.publicUrl,
      push: pusherFor(management),
      disconnect: disconnectorFor(management),
      clock: () => new Date(),
      log: jsonLogger('control-plane'),
      ...(config.slack
        ? {
            slack: {
              api: slackWebApi(secretFor(secrets, config.slack.botTokenSecretId, 'Slack bot token', 1), config.slack.apiUrl),
              signingSecret: secretFor(secrets, config.slack.signingSecretId, 'Slack signing', MIN_SLACK_SECRET_CHARS),
              posts: new DynamoSlackPostStore(ddb, config.tables.approvals),
            },
          }
        : {}),
      ...(config.reviewerClientSecretId ? { reviewerClientSecret: secretFor(secrets, config.reviewerClientSecretId, 'reviewer sign-in client', 1) } : {}),
      ...(config.tokenSigner ? { saml: { store: new DynamoSamlStore(ddb, config.tables.auditEvents), signer: tokenSignerFor(config.tokenSigner, config.publicUrl, limits) } } : {}),
    },
  };
}

function tokenSignerFor(settings: TokenSignerConfig, publicUrl: string, limits: ReturnType<typeof clientLimits>): TokenSigner {
  const issuer = controlPlaneIssuer(publicUrl);
  return 'kmsKeyId' in settings
    ? kmsTokenSigner(new KMSClient(limits), settings.kmsKeyId, issuer, settings.audience)
    : jwkTokenSigner(issuer, settings.audience, settings.privateJwk);
}

/** Local mode and tests build a fresh runtime after changing the environment. */
export function resetRuntime(): void {
  shared = undefined;
  byComponent.clear();
}
