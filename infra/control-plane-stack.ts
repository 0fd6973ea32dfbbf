import { Arn, ArnFormat, CfnOutput, Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import { CfnAccount } from 'aws-cdk-lib/aws-apigateway';
import { CfnStage, HttpApi, HttpMethod, WebSocketApi, WebSocketStage } from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpJwtAuthorizer, WebSocketLambdaAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration, WebSocketLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { AttributeType, BillingMode, StreamViewType, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { Alarm, ComparisonOperator, Metric, TreatMissingData, type IMetric } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { ManagedPolicy, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key, KeySpec, KeyUsage } from 'aws-cdk-lib/aws-kms';
import { Runtime, StartingPosition, Tracing } from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { FilterPattern, LogGroup, MetricFilter, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectLockMode, ObjectLockRetention, StorageClass } from 'aws-cdk-lib/aws-s3';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { EmailIdentity, Identity, type IEmailIdentity } from 'aws-cdk-lib/aws-ses';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { DefinitionBody, LogLevel, StateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct, IConstruct } from 'constructs';
import { join } from 'node:path';
import {
  APPROVAL_WORKFLOW_TASKS,
  HTTP_ROUTES,
  POLICY_STREAM_HANDLER,
  WS_HANDLERS,
  WS_MESSAGE_ROUTES,
  WS_ROUTE_SELECTION_EXPRESSION,
  type HandlerRef,
  type HttpRoute,
} from '../lambdas/routes';
import { TABLES, type TableDefinition, type TableKey } from '../lambdas/store/table-definitions';
import type { SamlIdpConfig } from '../lambdas/domain/saml';
import { controlPlaneIssuer } from '../lambdas/shared/config';

export const LAMBDA_TIMEOUT_SECONDS = 10;
export const LAMBDA_MEMORY_MB = 512;
export const WS_STAGE = 'prod';
export const ALARM_NAMESPACE = 'twokey';
export const ALARM_PERIOD_MINUTES = 5;
/** Steady request rate and burst each API stage admits before throttling (429). */
export const API_RATE_LIMIT_PER_SECOND = 50;
export const API_BURST_REQUESTS = 100;
/**
 * Each function's bundle carries the AWS SDK it was tested with (none is left to the runtime's copy,
 * which changes under it): no external modules.
 */
export const LAMBDA_BUNDLING = { minify: true, sourceMap: true, target: 'node24', forceDockerBundling: false, externalModules: [] as string[] };
/**
 * Lambda runs the handlers on Node 24: Lambda deprecated its Node 20 runtime on 2026-04-30 and then
 * blocks creating functions on it. The same code runs on Node 20 in the agent and in local mode.
 */
export const LAMBDA_RUNTIME = Runtime.NODEJS_24_X;

export interface ControlPlaneProps extends StackProps {
  /** OIDC issuer whose tokens admins, auditors and callers present. */
  readonly oidcIssuer: string;
  /** The HTTP API's audience. */
  readonly oidcAudience: string;
  /** The agents' audience (tokens used as psql passwords): refused by the HTTP API. */
  readonly dataPlaneAudience: string;
  readonly groupsClaim: string;
  readonly adminGroup: string;
  readonly auditorGroup: string;
  /** Address approval emails come from. */
  readonly senderEmail: string;
  /**
   * Its SES identity: `domain` (created here for the sender's domain with Easy DKIM; its three CNAME
   * records are stack outputs), `email` (the address alone, verified by a link SES mails to it), or
   * `existing` (an identity verified outside this stack, named by `sesIdentityName`).
   */
  readonly sesIdentity: 'domain' | 'email' | 'existing';
  readonly sesIdentityName?: string;
  /**
   * Creates the account's API Gateway CloudWatch Logs role (`AWS::ApiGateway::Account`, one per account
   * and region): stage access logging fails without it. Off for an account that has one.
   */
  readonly createApiGatewayAccount: boolean;
  /** Where alarms are mailed (an SNS subscription to confirm); the topic exists either way. */
  readonly alarmEmail?: string;
  readonly deletionProtection: boolean;
  readonly recordingRetentionDays: number;
  readonly objectLockMode: 'GOVERNANCE' | 'COMPLIANCE';
  readonly logRetention: RetentionDays;
  /**
   * Slack approvals: the app's bot token and signing secret become Secrets Manager secrets (their values
   * are put after the deploy, never in the template or a variable); off without.
   */
  readonly slack: boolean;
  /** The SAML identity provider the control plane is a service provider of; its sign-ins get tokens a KMS key signs. */
  readonly samlIdp?: SamlIdpConfig;
  /** The OpenID provider reviewers sign in with (a public client with PKCE, or `reviewerOidcClientSecret` for a confidential one). */
  readonly reviewerOidc?: { readonly issuer: string; readonly clientId: string };
  /** The reviewer client's secret, as a Secrets Manager secret whose value is put after the deploy. */
  readonly reviewerOidcClientSecret: boolean;
}

const LAMBDAS_DIR = join(__dirname, '..', 'lambdas');
export const APPROVAL_ASL_FILE = join(__dirname, '..', 'state-machines', 'approval.asl.json');
/** Longest an approval can wait (the policy schema's maximum) plus the steps around the wait. */
export const APPROVAL_WORKFLOW_TIMEOUT_SECONDS = 8 * 24 * 3600;

/**
 * The serverless control plane: WebSocket API for agent tunnels, HTTP API for admins and auditors,
 * one function per handler, DynamoDB tables, and the recordings bucket. Nothing runs (or costs) when idle.
 */
export class ControlPlaneStack extends Stack {
  readonly tables: Record<TableKey, Table>;
  readonly recordings: Bucket;
  readonly functions: NodejsFunction[] = [];
  readonly tunnelApi: WebSocketApi;
  readonly approvalWorkflow: StateMachine;
  /** Routes that authenticate in the handler (a signed link, Slack's signature, a SAML assertion), not with the JWT authorizer. */
  readonly selfAuthenticatedRoutes: { readonly route: IConstruct; readonly auth: Exclude<HttpRoute['auth'], 'oidc'> }[] = [];
  workflowFunctions: NodejsFunction[] = [];
  /** Each function's log group, by `entry-export`. */
  readonly logGroups = new Map<string, LogGroup>();
  apiGatewayRole: Role | undefined;
  alarmTopic!: Topic;
  /** The asymmetric key that signs the control plane's own tokens (with SAML configured). */
  readonly tokenSigningKey: Key | undefined;
  /** Secrets whose values an admin puts after the deploy (Slack's, the reviewer client's), by role. */
  readonly identitySecrets: { slackBotToken?: Secret; slackSigningSecret?: Secret; reviewerClientSecret?: Secret } = {};

  constructor(scope: Construct, id: string, props: ControlPlaneProps) {
    super(scope, id, props);

    const dataKey = new Key(this, 'DataKey', {
      description: 'twokey: encrypts recordings and tables',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.tables = Object.fromEntries(
      (Object.entries(TABLES) as [TableKey, TableDefinition][]).map(([key, def]) => [
        key,
        new Table(this, `${def.logicalName}Table`, {
          partitionKey: { name: def.partitionKey.name, type: def.partitionKey.type === 'S' ? AttributeType.STRING : AttributeType.NUMBER },
          sortKey: def.sortKey && { name: def.sortKey.name, type: def.sortKey.type === 'S' ? AttributeType.STRING : AttributeType.NUMBER },
          billingMode: BillingMode.PAY_PER_REQUEST,
          pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
          deletionProtection: props.deletionProtection,
          encryption: TableEncryption.CUSTOMER_MANAGED,
          encryptionKey: dataKey,
          stream: def.stream ? StreamViewType.NEW_IMAGE : undefined,
          timeToLiveAttribute: def.ttlAttribute,
          removalPolicy: props.deletionProtection ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
        }),
      ]),
    ) as Record<TableKey, Table>;
    for (const [key, def] of Object.entries(TABLES) as [TableKey, TableDefinition][]) {
      for (const ix of def.indexes ?? []) {
        this.tables[key].addGlobalSecondaryIndex({
          indexName: ix.name,
          partitionKey: { name: ix.partitionKey.name, type: ix.partitionKey.type === 'S' ? AttributeType.STRING : AttributeType.NUMBER },
          sortKey: { name: ix.sortKey.name, type: ix.sortKey.type === 'S' ? AttributeType.STRING : AttributeType.NUMBER },
        });
      }
    }

    const accessLogs = new Bucket(this, 'AccessLogsBucket', {
      encryption: BucketEncryption.S3_MANAGED,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      versioned: true,
      lifecycleRules: [{ expiration: Duration.days(365) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.recordings = new Bucket(this, 'RecordingsBucket', {
      encryption: BucketEncryption.KMS,
      encryptionKey: dataKey,
      bucketKeyEnabled: true,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      versioned: true,
      objectLockEnabled: true,
      objectLockDefaultRetention:
        props.objectLockMode === 'COMPLIANCE'
          ? ObjectLockRetention.compliance(Duration.days(props.recordingRetentionDays))
          : ObjectLockRetention.governance(Duration.days(props.recordingRetentionDays)),
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: 'recordings/',
      lifecycleRules: [
        { transitions: [{ storageClass: StorageClass.INFREQUENT_ACCESS, transitionAfter: Duration.days(30) }] },
        { noncurrentVersionExpiration: Duration.days(props.recordingRetentionDays + 1) },
        { abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
      removalPolicy: RemovalPolicy.RETAIN,
    });

    const sender = this.senderIdentity(props);
    // Approval links are signed with this key; handlers read it at cold start (it is in no template or variable).
    const linkKey = new Secret(this, 'LinkSigningKey', {
      description: 'twokey: signs approval links',
      encryptionKey: dataKey,
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
    });

    // Put after the deploy (`aws secretsmanager put-secret-value`); until then Slack's signature checks fail closed.
    const laterSecret = (id: string, description: string): Secret => new Secret(this, id, { description, encryptionKey: dataKey });
    if (props.slack) {
      this.identitySecrets.slackBotToken = laterSecret('SlackBotToken', "twokey: the Slack app's bot token (xoxb-...)");
      this.identitySecrets.slackSigningSecret = laterSecret('SlackSigningSecret', "twokey: the Slack app's signing secret");
    }
    if (props.reviewerOidc && props.reviewerOidcClientSecret) this.identitySecrets.reviewerClientSecret = laterSecret('ReviewerOidcClientSecret', "twokey: the reviewer sign-in client's secret");
    // ES256 on a KMS key: the private key never leaves KMS; the issuer's JWKS is derived from GetPublicKey.
    this.tokenSigningKey = props.samlIdp
      ? new Key(this, 'TokenSigningKey', {
          description: "twokey: signs the control plane's own tokens (SAML sign-ins), which agents trust",
          keySpec: KeySpec.ECC_NIST_P256,
          keyUsage: KeyUsage.SIGN_VERIFY,
          removalPolicy: RemovalPolicy.RETAIN,
        })
      : undefined;

    // WebSocket API first: the functions need its management endpoint.
    const wsApi = new WebSocketApi(this, 'TunnelApi', {
      apiName: 'twokey-tunnel',
      routeSelectionExpression: WS_ROUTE_SELECTION_EXPRESSION,
    });
    this.tunnelApi = wsApi;
    const wsStage = new WebSocketStage(this, 'TunnelStage', {
      webSocketApi: wsApi,
      stageName: WS_STAGE,
      autoDeploy: true,
      throttle: { rateLimit: API_RATE_LIMIT_PER_SECOND, burstLimit: API_BURST_REQUESTS },
    });
    // Every table's name from the one list the handlers' config reads, so none can be left out.
    const tableNames = Object.fromEntries((Object.keys(TABLES) as TableKey[]).map((key) => [TABLES[key].envVar, this.tables[key].tableName]));
    const environment: Record<string, string> = {
      ...tableNames,
      LINK_KEY_SECRET_ID: linkKey.secretArn,
      OIDC_ISSUERS: JSON.stringify([{ issuer: props.oidcIssuer, audience: props.oidcAudience, refusedAudiences: [props.dataPlaneAudience], groupsClaim: props.groupsClaim }]),
      ADMIN_GROUP: props.adminGroup,
      AUDITOR_GROUP: props.auditorGroup,
      WS_MANAGEMENT_ENDPOINT: wsStage.callbackUrl,
      TUNNEL_URL: wsStage.url,
      RECORDINGS_BUCKET: this.recordings.bucketName,
      SENDER_EMAIL: props.senderEmail,
      NODE_OPTIONS: '--enable-source-maps',
    };

    const cache = new Map<string, NodejsFunction>();
    const fn = (ref: HandlerRef): NodejsFunction => {
      const id = `${ref.entry}-${ref.export}`;
      const existing = cache.get(id);
      if (existing) return existing;
      const name = id.replace(/(^|-)(\w)/g, (_m, _d, c: string) => c.toUpperCase());
      const logGroup = new LogGroup(this, `${name}Logs`, { retention: props.logRetention, removalPolicy: RemovalPolicy.RETAIN });
      const created = new NodejsFunction(this, `${name}Fn`, {
        entry: join(LAMBDAS_DIR, `${ref.entry}.ts`),
        handler: ref.export,
        runtime: LAMBDA_RUNTIME,
        memorySize: LAMBDA_MEMORY_MB,
        timeout: Duration.seconds(LAMBDA_TIMEOUT_SECONDS),
        tracing: Tracing.ACTIVE,
        logGroup,
        environment,
        bundling: LAMBDA_BUNDLING,
      });
      cache.set(id, created);
      this.functions.push(created);
      this.logGroups.set(id, logGroup);
      return created;
    };
    const t = this.tables;
    const recordingObjects = this.recordings.arnForObjects('recordings/*');

    // Least privilege per function: each grant below names the one handler that needs it.
    const authorizerFn = fn(WS_HANDLERS.authorizer);
    t.agents.grantReadData(authorizerFn);
    for (const ref of [WS_HANDLERS.connect, WS_HANDLERS.disconnect]) {
      t.agents.grantReadWriteData(fn(ref));
      t.connections.grantReadWriteData(fn(ref));
    }
    // The message handler answers hello (policy, SSH keys, pending decisions), takes approval requests, records
    // sessions and presigns chunk uploads (the agent's PUT runs with its permission: put under
    // recordings/ only, no read, no delete) and lists a session's chunks to end it.
    const messageFn = fn(WS_HANDLERS.message);
    t.agents.grantReadWriteData(messageFn);
    t.connections.grantReadData(messageFn);
    t.policies.grantReadData(messageFn);
    t.approvals.grantReadWriteData(messageFn);
    t.approvalInbox.grantWriteData(messageFn);
    t.sessions.grantReadWriteData(messageFn);
    t.recordingChunks.grantReadWriteData(messageFn);
    t.sshKeys.grantReadData(messageFn);
    wsStage.grantManagementApiAccess(messageFn);
    messageFn.addToRolePolicy(new PolicyStatement({ actions: ['s3:PutObject'], resources: [recordingObjects] }));
    messageFn.addToRolePolicy(new PolicyStatement({ actions: ['s3:ListBucket'], resources: [this.recordings.bucketArn], conditions: { StringLike: { 's3:prefix': ['recordings/*'] } } }));
    dataKey.grantEncrypt(messageFn);
    // The masking hash key that agents receive in hello.ok is derived from the link key.
    linkKey.grantRead(messageFn);

    const authorizer = new WebSocketLambdaAuthorizer('AgentKeyAuthorizer', authorizerFn, {
      identitySource: ['route.request.header.Authorization'],
    });
    wsApi.addRoute('$connect', { integration: new WebSocketLambdaIntegration('Connect', fn(WS_HANDLERS.connect)), authorizer });
    wsApi.addRoute('$disconnect', { integration: new WebSocketLambdaIntegration('Disconnect', fn(WS_HANDLERS.disconnect)) });
    const messageIntegration = new WebSocketLambdaIntegration('Message', messageFn);
    for (const route of [...WS_MESSAGE_ROUTES, '$default']) wsApi.addRoute(route, { integration: messageIntegration });

    const streamFn = fn(POLICY_STREAM_HANDLER);
    t.policies.grantReadData(streamFn);
    t.connections.grantReadWriteData(streamFn);
    t.agents.grantReadWriteData(streamFn);
    wsStage.grantManagementApiAccess(streamFn);
    streamFn.addEventSource(
      new DynamoEventSource(t.policies, {
        startingPosition: StartingPosition.LATEST,
        batchSize: 10,
        retryAttempts: 5,
        bisectBatchOnError: true,
        maxRecordAge: Duration.hours(1),
      }),
    );

    // The approval workflow: the real ASL file, its task functions substituted in, least-privilege role.
    const workflowFns = Object.fromEntries(Object.values(APPROVAL_WORKFLOW_TASKS).map((task) => [task.substitution, fn(task)]));
    for (const f of Object.values(workflowFns)) t.approvals.grantReadWriteData(f);
    const notifyFn = fn(APPROVAL_WORKFLOW_TASKS.NotifyReviewersAndWait);
    this.grantSendFrom(notifyFn, sender, props.senderEmail);
    linkKey.grantRead(notifyFn);
    // Slack: the notifier posts the request, the outcome recorder updates the posts (link, button or timeout).
    this.usesSlack(notifyFn, []);
    this.usesSlack(fn(APPROVAL_WORKFLOW_TASKS.RecordDecision), []);
    const applyPolicyFn = fn(APPROVAL_WORKFLOW_TASKS.ApplyPolicyChange);
    t.policies.grantReadWriteData(applyPolicyFn);
    t.auditEvents.grantWriteData(applyPolicyFn);
    const notifyAgentFn = fn(APPROVAL_WORKFLOW_TASKS.NotifyAgent);
    t.connections.grantReadWriteData(notifyAgentFn);
    wsStage.grantManagementApiAccess(notifyAgentFn);
    const workflowLogs = new LogGroup(this, 'ApprovalWorkflowLogs', { retention: props.logRetention, removalPolicy: RemovalPolicy.RETAIN });
    this.approvalWorkflow = new StateMachine(this, 'ApprovalWorkflow', {
      definitionBody: DefinitionBody.fromFile(APPROVAL_ASL_FILE),
      definitionSubstitutions: Object.fromEntries(Object.entries(workflowFns).map(([name, f]) => [name, f.functionArn])),
      timeout: Duration.seconds(APPROVAL_WORKFLOW_TIMEOUT_SECONDS),
      tracingEnabled: true,
      logs: { destination: workflowLogs, level: LogLevel.ALL, includeExecutionData: false },
    });
    for (const f of Object.values(workflowFns)) f.grantInvoke(this.approvalWorkflow);
    this.workflowFunctions = Object.values(workflowFns);
    messageFn.addEnvironment('APPROVAL_STATE_MACHINE_ARN', this.approvalWorkflow.stateMachineArn);
    this.approvalWorkflow.grantStartExecution(messageFn);

    const httpApi = new HttpApi(this, 'HttpApi', { apiName: 'twokey-http', createDefaultStage: true });
    const jwt = new HttpJwtAuthorizer('OidcAuthorizer', props.oidcIssuer, { jwtAudience: [props.oidcAudience] });
    // Links, SAML's entity id and ACS, the reviewer sign-in's redirect and the token issuer are URLs under the API's.
    const publicUrl = (f: NodejsFunction): void => {
      f.addEnvironment('PUBLIC_URL', httpApi.apiEndpoint);
    };
    publicUrl(notifyFn);
    const tokenKey = this.tokenSigningKey;
    /** The control plane's token issuer (PUBLIC_URL/tokens) and its KMS key; `actions` are the KMS calls this function makes. */
    const issuesTokens = (f: NodejsFunction, actions: ('kms:Sign' | 'kms:GetPublicKey')[]): void => {
      publicUrl(f);
      if (!tokenKey) return;
      f.addEnvironment('TOKEN_SIGNER', this.toJsonString({ audience: props.dataPlaneAudience, kmsKeyId: tokenKey.keyArn }));
      if (actions.length > 0) tokenKey.grant(f, ...actions);
    };
    const samlSp = (f: NodejsFunction, actions: ('kms:Sign' | 'kms:GetPublicKey')[]): void => {
      issuesTokens(f, actions);
      if (props.samlIdp) f.addEnvironment('SAML_IDP', JSON.stringify(props.samlIdp));
    };
    /** Reviewer sign-in: the provider's settings; the client secret (if any) only where the code is exchanged. */
    const reviewerSignIn = (f: NodejsFunction, exchangesCode: boolean): void => {
      publicUrl(f);
      if (props.reviewerOidc) f.addEnvironment('REVIEWER_OIDC', JSON.stringify(props.reviewerOidc));
      const secret = this.identitySecrets.reviewerClientSecret;
      if (secret && exchangesCode) {
        f.addEnvironment('REVIEWER_OIDC_CLIENT_SECRET_ID', secret.secretArn);
        secret.grantRead(f);
      }
    };
    // Rotating or deleting an agent's key closes its open connections (Management API DeleteConnection).
    const managesAgentKeys = (f: NodejsFunction): void => {
      t.agents.grantReadWriteData(f);
      t.connections.grantReadWriteData(f);
      wsStage.grantManagementApiAccess(f);
    };
    const managesSshKeys = (f: NodejsFunction): void => {
      t.sshKeys.grantReadWriteData(f);
      t.connections.grantReadData(f);
      wsStage.grantManagementApiAccess(f);
    };
    const castsVotes = (f: NodejsFunction): void => {
      t.approvals.grantReadWriteData(f);
      t.policies.grantReadData(f);
      linkKey.grantRead(f);
      this.approvalWorkflow.grantTaskResponse(f);
    };
    const httpGrants: Record<string, (f: NodejsFunction) => void> = {
      // A new agent's setup lists the issuers it is to trust: the control plane's own among them.
      'agents-http.register': (f) => {
        managesAgentKeys(f);
        issuesTokens(f, []);
      },
      'agents-http.remove': managesAgentKeys,
      'agents-http.list': (f) => {
        t.agents.grantReadData(f);
        t.policies.grantReadData(f);
      },
      // A policy change is an approval request (its workflow started here); an emergency change is stored at once, mailed to admins and audited.
      'policies-http.put': (f) => {
        t.policies.grantReadWriteData(f);
        t.approvals.grantReadWriteData(f);
        t.approvalInbox.grantWriteData(f);
        t.auditEvents.grantWriteData(f);
        this.grantSendFrom(f, sender, props.senderEmail);
        f.addEnvironment('APPROVAL_STATE_MACHINE_ARN', this.approvalWorkflow.stateMachineArn);
        this.approvalWorkflow.grantStartExecution(f);
      },
      'policies-http.get': (f) => t.policies.grantReadData(f),
      'approvals-http.list': (f) => {
        t.approvals.grantReadData(f);
        t.approvalInbox.grantReadData(f);
      },
      // The policy says which reviewer groups vote only once signed in; the sign-in session is sealed under the link key.
      'approvals-http.review': (f) => {
        t.approvals.grantReadData(f);
        t.policies.grantReadData(f);
        linkKey.grantRead(f);
        publicUrl(f);
      },
      'approvals-http.vote': (f) => {
        castsVotes(f);
        publicUrl(f);
      },
      'approvals-http.signIn': (f) => {
        linkKey.grantRead(f);
        reviewerSignIn(f, false);
      },
      'approvals-http.signInCallback': (f) => {
        linkKey.grantRead(f);
        reviewerSignIn(f, true);
      },
      // A Slack button press votes as a link does (the policy maps the Slack user to a reviewer), checked with the signing secret.
      'slack-http.interactions': (f) => {
        castsVotes(f);
        this.usesSlack(f, ['signingSecret']);
      },
      // SAML requests sent and assertions accepted (the replay cache) are kept as audit events; the metadata reads nothing.
      // Only the ACS signs (a token per accepted assertion); its kid is the public key's thumbprint.
      'saml-http.metadata': (f) => samlSp(f, []),
      'saml-http.login': (f) => {
        t.auditEvents.grantReadWriteData(f);
        samlSp(f, []);
      },
      'saml-http.acs': (f) => {
        t.auditEvents.grantReadWriteData(f);
        samlSp(f, ['kms:Sign', 'kms:GetPublicKey']);
      },
      'token-issuer-http.discovery': (f) => issuesTokens(f, []),
      'token-issuer-http.jwks': (f) => issuesTokens(f, ['kms:GetPublicKey']),
      // A caller's own SSH keys; a change is pushed to every connected agent.
      'ssh-keys-http.add': managesSshKeys,
      'ssh-keys-http.remove': managesSshKeys,
      'ssh-keys-http.list': (f) => t.sshKeys.grantReadData(f),
      'sessions-http.list': (f) => t.sessions.grantReadData(f),
      'sessions-http.get': (f) => t.sessions.grantReadData(f),
      // Presigned GET URLs for auditors carry this function's permission: read under recordings/ only.
      'sessions-http.recording': (f) => {
        t.sessions.grantReadData(f);
        t.auditEvents.grantWriteData(f);
        f.addToRolePolicy(new PolicyStatement({ actions: ['s3:GetObject'], resources: [recordingObjects] }));
        dataKey.grantDecrypt(f);
      },
    };
    for (const route of HTTP_ROUTES) {
      const f = fn(route);
      const grant = httpGrants[`${route.entry}.${route.export}`];
      if (!grant) throw new Error(`no grants declared for ${route.entry}.${route.export}`);
      grant(f);
      const [added] = httpApi.addRoutes({
        path: route.path,
        methods: [HttpMethod[route.method]],
        integration: new HttpLambdaIntegration(`${route.entry}-${route.export}`, f),
        authorizer: route.auth === 'oidc' ? jwt : undefined,
      });
      if (route.auth !== 'oidc' && added) this.selfAuthenticatedRoutes.push({ route: added, auth: route.auth });
    }

    // Access logs for both APIs (who called what, from where), kept like the function logs.
    const accessLogGroup = new LogGroup(this, 'ApiAccessLogs', { retention: props.logRetention, removalPolicy: RemovalPolicy.RETAIN });
    const accessFormat = JSON.stringify({
      requestId: '$context.requestId',
      ip: '$context.identity.sourceIp',
      time: '$context.requestTime',
      route: '$context.routeKey',
      status: '$context.status',
      connectionId: '$context.connectionId',
      error: '$context.error.message',
    });
    (wsStage.node.defaultChild as CfnStage).accessLogSettings = { destinationArn: accessLogGroup.logGroupArn, format: accessFormat };
    const httpStage = httpApi.defaultStage?.node.defaultChild as CfnStage;
    httpStage.accessLogSettings = { destinationArn: accessLogGroup.logGroupArn, format: accessFormat };
    httpStage.defaultRouteSettings = { throttlingRateLimit: API_RATE_LIMIT_PER_SECOND, throttlingBurstLimit: API_BURST_REQUESTS };
    if (props.createApiGatewayAccount) {
      const account = this.apiGatewayAccount();
      wsStage.node.addDependency(account);
      httpStage.node.addDependency(account);
    }

    this.alarms(props, dataKey);

    new CfnOutput(this, 'HttpApiUrl', { value: httpApi.apiEndpoint, description: 'Admin and auditor API (twokey --url), and the base of approval links' });
    for (const [role, secret] of Object.entries(this.identitySecrets)) {
      new CfnOutput(this, `${role.charAt(0).toUpperCase()}${role.slice(1)}SecretArn`, { value: secret.secretArn, description: 'Put its value after the deploy (aws secretsmanager put-secret-value)' });
    }
    if (tokenKey) new CfnOutput(this, 'TokenIssuer', { value: controlPlaneIssuer(httpApi.apiEndpoint), description: "The issuer of the control plane's own tokens (SAML sign-ins), which agents trust" });
    new CfnOutput(this, 'TunnelUrl', { value: wsStage.url, description: "Agents' controlPlane.url" });
    new CfnOutput(this, 'RecordingsBucketName', { value: this.recordings.bucketName });
    new CfnOutput(this, 'RecordingsEndpoint', { value: `https://${this.recordings.bucketRegionalDomainName}`, description: 'The S3 endpoint agents upload recordings to (allow it outbound)' });
  }

  /**
   * Slack's secret ids (both, as the handlers' configuration wants them together); the bot token is read
   * by every Slack user, the signing secret only by those named (the interactions route).
   */
  private usesSlack(f: NodejsFunction, alsoReads: 'signingSecret'[]): void {
    const { slackBotToken, slackSigningSecret } = this.identitySecrets;
    if (!slackBotToken || !slackSigningSecret) return;
    f.addEnvironment('SLACK_BOT_TOKEN_SECRET_ID', slackBotToken.secretArn);
    f.addEnvironment('SLACK_SIGNING_SECRET_ID', slackSigningSecret.secretArn);
    slackBotToken.grantRead(f);
    if (alsoReads.includes('signingSecret')) slackSigningSecret.grantRead(f);
  }

  /** The sender's SES identity (see ControlPlaneProps.sesIdentity); a domain identity's DKIM records are outputs. */
  private senderIdentity(props: ControlPlaneProps): IEmailIdentity {
    const domain = props.senderEmail.split('@')[1] ?? '';
    if (props.sesIdentity === 'existing') return EmailIdentity.fromEmailIdentityName(this, 'SenderIdentity', props.sesIdentityName ?? domain);
    if (props.sesIdentity === 'email') return new EmailIdentity(this, 'SenderIdentity', { identity: Identity.email(props.senderEmail) });
    const identity = new EmailIdentity(this, 'SenderIdentity', { identity: Identity.domain(domain) });
    identity.dkimRecords.forEach((record, i) => new CfnOutput(this, `SenderDkimRecord${i + 1}`, { value: `${record.name} CNAME ${record.value}`, description: `DNS record ${i + 1} of 3 that verifies ${domain} for SES` }));
    return identity;
  }

  /**
   * SendEmail from the sender's address only. SES authorizes a send against every identity it
   * involves: in the sandbox the recipients are verified identities too, so the resource is every
   * identity of this account and region, and the condition pins the From address.
   */
  private grantSendFrom(f: NodejsFunction, sender: IEmailIdentity, address: string): void {
    f.addToRolePolicy(
      new PolicyStatement({
        actions: ['ses:SendEmail', 'ses:SendRawEmail'],
        resources: [sender.emailIdentityArn, this.sesIdentitiesArn],
        conditions: { StringEquals: { 'ses:FromAddress': address } },
      }),
    );
  }

  get sesIdentitiesArn(): string {
    return Arn.format({ service: 'ses', resource: 'identity', resourceName: '*', arnFormat: ArnFormat.SLASH_RESOURCE_NAME }, this);
  }

  /** The account's API Gateway CloudWatch Logs role; kept on stack deletion (other APIs of the account may log through it). */
  private apiGatewayAccount(): CfnAccount {
    const role = new Role(this, 'ApiGatewayCloudWatchRole', {
      assumedBy: new ServicePrincipal('apigateway.amazonaws.com'),
      managedPolicies: [ManagedPolicy.fromAwsManagedPolicyName('service-role/AmazonAPIGatewayPushToCloudWatchLogs')],
    });
    role.applyRemovalPolicy(RemovalPolicy.RETAIN);
    this.apiGatewayRole = role;
    const account = new CfnAccount(this, 'ApiGatewayAccount', { cloudWatchRoleArn: role.roleArn });
    account.applyRemovalPolicy(RemovalPolicy.RETAIN);
    return account;
  }

  /**
   * Alarms to an SNS topic: the approval workflow failing or timing out, agents dropping their tunnel,
   * recordings ending incomplete or refused (from the handlers' structured logs).
   */
  private alarms(props: ControlPlaneProps, key: Key): void {
    this.alarmTopic = new Topic(this, 'AlarmTopic', { displayName: 'twokey alarms', masterKey: key, enforceSSL: true });
    if (props.alarmEmail) this.alarmTopic.addSubscription(new EmailSubscription(props.alarmEmail));
    const action = new SnsAction(this.alarmTopic);
    const alarm = (id: string, description: string, metric: IMetric): void => {
      new Alarm(this, id, {
        alarmDescription: description,
        metric,
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      }).addAlarmAction(action);
    };
    const period = Duration.minutes(ALARM_PERIOD_MINUTES);
    alarm('ApprovalWorkflowFailedAlarm', 'An approval workflow execution failed, timed out or was aborted', this.approvalWorkflow.metricFailed({ period }).with({ statistic: 'Sum' }));
    alarm('ApprovalWorkflowTimedOutAlarm', 'An approval workflow execution hit its overall timeout', this.approvalWorkflow.metricTimedOut({ period }).with({ statistic: 'Sum' }));
    // The handlers' log lines are JSON in Lambda's text format (a prefix before them): term patterns match inside them.
    const fromLogs = (id: string, description: string, sources: { handler: HandlerRef; terms: string[] }[]): void => {
      for (const [i, source] of sources.entries()) {
        const logGroup = this.logGroups.get(`${source.handler.entry}-${source.handler.export}`) as LogGroup;
        new MetricFilter(this, `${id}Filter${i + 1}`, { logGroup, filterPattern: FilterPattern.allTerms(...source.terms), metricNamespace: ALARM_NAMESPACE, metricName: id, metricValue: '1' });
      }
      alarm(`${id}Alarm`, description, new Metric({ namespace: ALARM_NAMESPACE, metricName: id, period, statistic: 'Sum' }));
    };
    fromLogs('AgentDisconnects', 'An agent dropped its tunnel to the control plane', [{ handler: WS_HANDLERS.disconnect, terms: ['agent.disconnected'] }]);
    fromLogs('RecordingGaps', 'A recording ended incomplete (chunks missing or events lost), or an agent declared other content for a chunk', [
      { handler: WS_HANDLERS.message, terms: ['session.ended', 'incomplete'] },
      { handler: WS_HANDLERS.message, terms: ['recording.chunk.conflict'] },
    ]);
  }
}
