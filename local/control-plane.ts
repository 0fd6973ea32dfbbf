import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { controlPlaneIssuer } from '../lambdas/shared/config';
import { getRuntime, resetRuntime } from '../lambdas/shared/runtime';
import { DynamoPolicyStore } from '../lambdas/store/dynamo-stores';
import { TABLES } from '../lambdas/store/table-definitions';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from './aws/credentials';
import { startLocalDynamo, type LocalDynamo } from './aws/dynamo';
import { SES_PREFIX, LocalEmailOutbox } from './aws/email-outbox';
import { startPolicyStream } from './aws/policy-stream';
import { LINK_KEY_SECRET_ID, LocalSecrets, SECRETS_PREFIX } from './aws/secrets';
import { LOCAL_STATE_MACHINE_ARN, LocalStepFunctions } from './aws/step-functions';
import { startLocalS3, type LocalS3 } from './aws/s3';
import { serveHttpApi, sendJson } from './gateway/http-api';
import { LocalWebSocketApi, MANAGEMENT_PREFIX, TUNNEL_PATH } from './gateway/websocket-api';
import type { IssuerConfig } from '../core/identity/verifier';
import { DEV_AUDIENCES, devIssuerConfig, issuerDocuments, loadOrCreateSigningKey, type DevSigningKey } from './oidc/dev-issuer';

export const OIDC_PATH = '/oidc';
const REQUEST_TIMEOUT_MS = 30_000;
const LOCAL_SDK_REQUEST_TIMEOUT_MS = 30_000;

export interface ControlPlaneOptions {
  /** Directory for on-disk state; undefined keeps everything in memory (DynamoDB) or in a temp dir (S3). */
  readonly dataDir: string | undefined;
  readonly s3Dir: string;
  readonly host: string;
  readonly ports: { http: number; dynamo: number; s3: number };
  readonly outboxDir: string;
  /** Run the stand-in for the Policies table stream (tests that drive the stream handler themselves turn it off). */
  readonly policyStream?: boolean;
  /** Issuers trusted besides the dev issuer (e.g. the local OpenID provider of `--idp oidc`). */
  readonly extraIssuers?: readonly IssuerConfig[];
  /** A Slack app (the stand-in's API URL and the app's secrets): approvals go to Slack as well. */
  readonly slack?: { readonly apiUrl: string; readonly botToken: string; readonly signingSecret: string };
  /** A SAML identity provider (SAML_IDP): the control plane acts as its service provider. */
  readonly samlIdp?: Record<string, unknown>;
  /** Sign the control plane's own tokens with this KMS key (a stand-in's endpoint), as on AWS, instead of a local key. */
  readonly kmsTokenKey?: { readonly endpoint: string; readonly keyId: string };
  /** The OpenID provider reviewers sign in with (REVIEWER_OIDC). */
  readonly reviewerOidc?: { readonly issuer: string; readonly clientId: string; readonly clientSecret?: string };
  readonly log: (line: string) => void;
}

const SFN_PREFIX = '/@sfn';
const TOKEN_KEY_FILE = 'token-signing-key.json';
const SLACK_BOT_TOKEN_SECRET_ID = 'twokey/slack-bot-token';
const SLACK_SIGNING_SECRET_ID = 'twokey/slack-signing-secret';
const REVIEWER_CLIENT_SECRET_ID = 'twokey/reviewer-client-secret';

export interface LocalControlPlane {
  readonly httpUrl: string;
  readonly wsUrl: string;
  readonly issuer: string;
  /** The issuer of the control plane's own tokens (SAML sign-ins), which agents trust like any issuer. */
  readonly tokenIssuer: string;
  readonly signingKey: DevSigningKey;
  readonly dynamo: LocalDynamo;
  readonly s3: LocalS3;
  readonly stepFunctions: LocalStepFunctions;
  readonly outboxDir: string;
  /** Drops every agent connection at once, as if the control plane had crashed. */
  dropConnections(): void;
  stop(): Promise<void>;
}

async function listen(server: Server, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

/**
 * The control plane on one machine: dynalite, s3rver, the dev OIDC issuer, and one HTTP server that
 * plays API Gateway (HTTP API, WebSocket API and its Management API) in front of the same handlers.
 */
export async function startLocalControlPlane(options: ControlPlaneOptions): Promise<LocalControlPlane> {
  const dynamo = await startLocalDynamo({ path: options.dataDir ? join(options.dataDir, 'dynamodb') : undefined, port: options.ports.dynamo, host: options.host });
  const s3 = await startLocalS3({ directory: options.s3Dir, port: options.ports.s3, host: options.host });
  const signingKey = await loadOrCreateSigningKey(options.dataDir);
  const tokenKey = await loadOrCreateSigningKey(options.dataDir, TOKEN_KEY_FILE);

  let domain = `${options.host}:${options.ports.http}`;
  const wsApi = new LocalWebSocketApi(() => domain);
  let docs: Record<string, unknown> = {};
  const stepFunctions = new LocalStepFunctions(options.log);
  const outbox = new LocalEmailOutbox(options.outboxDir, options.log);
  const secrets = new LocalSecrets(options.dataDir);
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', `http://${domain}`);
    if (url.pathname.startsWith(SFN_PREFIX)) return void stepFunctions.serve(req, res);
    if (url.pathname.startsWith(SES_PREFIX)) return void outbox.serve(req, res, url.pathname.slice(SES_PREFIX.length));
    if (url.pathname.startsWith(SECRETS_PREFIX)) return void secrets.serve(req, res);
    if (url.pathname.startsWith(`${OIDC_PATH}/`) && req.method === 'GET') {
      const doc = docs[url.pathname.slice(OIDC_PATH.length)];
      return doc ? sendJson(res, 200, doc) : sendJson(res, 404, { message: 'Not Found' });
    }
    const work = url.pathname.startsWith(MANAGEMENT_PREFIX) ? wsApi.serveManagement(req, res, url) : serveHttpApi(req, res, url);
    work.catch(() => {
      if (!res.headersSent) sendJson(res, 500, { message: 'Internal Server Error' });
      else res.destroy();
    });
  });
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.headersTimeout = REQUEST_TIMEOUT_MS;
  server.on('upgrade', (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    if (new URL(req.url ?? '/', 'http://x').pathname !== TUNNEL_PATH) {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    void wsApi.handleUpgrade(req, socket, head);
  });
  const port = await listen(server, options.ports.http, options.host);
  domain = `${options.host}:${port}`;
  const httpUrl = `http://${domain}`;
  const issuer = `${httpUrl}${OIDC_PATH}`;
  docs = issuerDocuments(issuer, signingKey);

  // The handlers read their configuration from the environment, exactly as in Lambda.
  Object.assign(process.env, {
    AWS_REGION: LOCAL_REGION,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    [TABLES.agents.envVar]: dynamo.tableNames.agents,
    [TABLES.connections.envVar]: dynamo.tableNames.connections,
    [TABLES.policies.envVar]: dynamo.tableNames.policies,
    [TABLES.approvals.envVar]: dynamo.tableNames.approvals,
    [TABLES.approvalInbox.envVar]: dynamo.tableNames.approvalInbox,
    [TABLES.sessions.envVar]: dynamo.tableNames.sessions,
    [TABLES.recordingChunks.envVar]: dynamo.tableNames.recordingChunks,
    [TABLES.auditEvents.envVar]: dynamo.tableNames.auditEvents,
    [TABLES.sshKeys.envVar]: dynamo.tableNames.sshKeys,
    AWS_ENDPOINT_URL_SFN: `${httpUrl}${SFN_PREFIX}`,
    AWS_ENDPOINT_URL_SESV2: `${httpUrl}${SES_PREFIX}`,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: `${httpUrl}${SECRETS_PREFIX}`,
    APPROVAL_STATE_MACHINE_ARN: LOCAL_STATE_MACHINE_ARN,
    LINK_KEY_SECRET_ID,
    PUBLIC_URL: httpUrl,
    SENDER_EMAIL: 'twokey@localhost',
    OIDC_ISSUERS: JSON.stringify([devIssuerConfig(issuer, 'api'), ...(options.extraIssuers ?? [])]),
    WS_MANAGEMENT_ENDPOINT: httpUrl,
    TUNNEL_URL: `ws://${domain}${TUNNEL_PATH}`,
    // The stand-ins share this machine with the agent, the database and tests: a loaded moment is no outage.
    SDK_REQUEST_TIMEOUT_MS: String(LOCAL_SDK_REQUEST_TIMEOUT_MS),
    RECORDINGS_BUCKET: s3.bucket,
    S3_FORCE_PATH_STYLE: 'true',
  });
  // The control plane's own tokens (SAML sign-ins) are signed with a local key of their own (a KMS key on AWS) and
  // verified through the control plane's issuer routes. A SAML sign-in's token is a psql password: the data plane's audience.
  const kms = options.kmsTokenKey;
  process.env.TOKEN_SIGNER = JSON.stringify({ audience: DEV_AUDIENCES.data, ...(kms ? { kmsKeyId: kms.keyId } : { privateJwk: tokenKey.privateJwk }) });
  if (kms) process.env.AWS_ENDPOINT_URL_KMS = kms.endpoint;
  else delete process.env.AWS_ENDPOINT_URL_KMS;
  if (options.samlIdp) process.env.SAML_IDP = JSON.stringify(options.samlIdp);
  else delete process.env.SAML_IDP;
  // The reviewer client's secret is read from Secrets Manager, as on AWS (never in the variable).
  const { clientSecret, ...reviewerOidc } = options.reviewerOidc ?? {};
  if (options.reviewerOidc) process.env.REVIEWER_OIDC = JSON.stringify(reviewerOidc);
  else delete process.env.REVIEWER_OIDC;
  if (clientSecret) {
    secrets.put(REVIEWER_CLIENT_SECRET_ID, clientSecret);
    process.env.REVIEWER_OIDC_CLIENT_SECRET_ID = REVIEWER_CLIENT_SECRET_ID;
  } else delete process.env.REVIEWER_OIDC_CLIENT_SECRET_ID;
  const slack = options.slack;
  if (slack) {
    secrets.put(SLACK_BOT_TOKEN_SECRET_ID, slack.botToken);
    secrets.put(SLACK_SIGNING_SECRET_ID, slack.signingSecret);
    Object.assign(process.env, { SLACK_BOT_TOKEN_SECRET_ID, SLACK_SIGNING_SECRET_ID, SLACK_API_URL: slack.apiUrl });
  } else {
    for (const name of ['SLACK_BOT_TOKEN_SECRET_ID', 'SLACK_SIGNING_SECRET_ID', 'SLACK_API_URL']) delete process.env[name];
  }
  resetRuntime();
  const runtime = getRuntime('local');
  // Requests still pending from before a restart: run their workflow again (it resumes at the wait,
  // with the time that is left, and sends no second email).
  for (const pending of await runtime.deps.approvals.pending()) {
    await stepFunctions.startExecution(pending.requestId, JSON.stringify({ requestId: pending.requestId }));
  }

  const ddb = DynamoDBDocumentClient.from(
    new DynamoDBClient({ endpoint: dynamo.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS }),
  );
  const stream =
    options.policyStream === false
      ? { stop: () => undefined }
      : startPolicyStream(new DynamoPolicyStore(ddb, dynamo.tableNames.policies), (e) => options.log(`policy stream: ${e instanceof Error ? e.message : String(e)}`));

  let stopped = false;
  return {
    httpUrl,
    wsUrl: `ws://${domain}${TUNNEL_PATH}`,
    issuer,
    tokenIssuer: controlPlaneIssuer(httpUrl),
    signingKey,
    dynamo,
    s3,
    stepFunctions,
    outboxDir: options.outboxDir,
    dropConnections: () => wsApi.terminateAll(),
    async stop() {
      if (stopped) return;
      stopped = true;
      stream.stop();
      stepFunctions.stop();
      await wsApi.closeAll();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      ddb.destroy();
      await s3.stop();
      await dynamo.stop();
      resetRuntime();
    },
  };
}
