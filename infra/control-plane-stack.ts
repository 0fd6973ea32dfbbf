import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import { CfnStage, HttpApi, HttpMethod, WebSocketApi, WebSocketStage } from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpJwtAuthorizer, WebSocketLambdaAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration, WebSocketLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { AttributeType, BillingMode, StreamViewType, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import { Runtime, StartingPosition, Tracing } from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectLockMode, ObjectLockRetention, StorageClass } from 'aws-cdk-lib/aws-s3';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { EmailIdentity, Identity } from 'aws-cdk-lib/aws-ses';
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
} from '../lambdas/routes';
import { TABLES, type TableDefinition, type TableKey } from '../lambdas/store/table-definitions';

export const LAMBDA_TIMEOUT_SECONDS = 10;
export const LAMBDA_MEMORY_MB = 512;
export const WS_STAGE = 'prod';
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
  /** Address approval emails come from; its SES identity is created here. */
  readonly senderEmail: string;
  readonly deletionProtection: boolean;
  readonly recordingRetentionDays: number;
  readonly objectLockMode: 'GOVERNANCE' | 'COMPLIANCE';
  readonly logRetention: RetentionDays;
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
  readonly linkRoutes: IConstruct[] = [];
  workflowFunctions: NodejsFunction[] = [];

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

    const sender = new EmailIdentity(this, 'SenderIdentity', { identity: Identity.email(props.senderEmail) });
    // Approval links are signed with this key; handlers read it at cold start (it is in no template or variable).
    const linkKey = new Secret(this, 'LinkSigningKey', {
      description: 'twokey: signs approval links',
      encryptionKey: dataKey,
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
    });

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
      throttle: { rateLimit: 50, burstLimit: 100 },
    });
    const environment: Record<string, string> = {
      [TABLES.agents.envVar]: this.tables.agents.tableName,
      [TABLES.connections.envVar]: this.tables.connections.tableName,
      [TABLES.policies.envVar]: this.tables.policies.tableName,
      [TABLES.approvals.envVar]: this.tables.approvals.tableName,
      [TABLES.sessions.envVar]: this.tables.sessions.tableName,
      [TABLES.auditEvents.envVar]: this.tables.auditEvents.tableName,
      LINK_KEY_SECRET_ID: linkKey.secretArn,
      OIDC_ISSUERS: JSON.stringify([{ issuer: props.oidcIssuer, audience: props.oidcAudience, refusedAudiences: [props.dataPlaneAudience], groupsClaim: props.groupsClaim }]),
      ADMIN_GROUP: props.adminGroup,
      AUDITOR_GROUP: props.auditorGroup,
      WS_MANAGEMENT_ENDPOINT: wsStage.callbackUrl,
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
        bundling: { minify: true, sourceMap: true, target: 'node24', forceDockerBundling: false },
      });
      cache.set(id, created);
      this.functions.push(created);
      return created;
    };

    // Least privilege per function: tunnel handlers touch agents, connections and (read) policies.
    const authorizerFn = fn(WS_HANDLERS.authorizer);
    this.tables.agents.grantReadData(authorizerFn);
    for (const ref of [WS_HANDLERS.connect, WS_HANDLERS.disconnect, WS_HANDLERS.message]) {
      const f = fn(ref);
      this.tables.agents.grantReadWriteData(f);
      this.tables.connections.grantReadWriteData(f);
      this.tables.policies.grantReadData(f);
      this.tables.approvals.grantReadWriteData(f);
      this.tables.sessions.grantReadWriteData(f);
      wsStage.grantManagementApiAccess(f);
    }
    // The message handler presigns chunk uploads (the agent's PUT runs with its permission), reads chunks
    // back for the manifest and writes the manifest: put and get under recordings/, nothing else (no delete).
    const recordingObjects = this.recordings.arnForObjects('recordings/*');
    const messageFn = fn(WS_HANDLERS.message);
    messageFn.addToRolePolicy(new PolicyStatement({ actions: ['s3:PutObject', 's3:GetObject'], resources: [recordingObjects] }));
    dataKey.grantEncryptDecrypt(messageFn);
    // The masking hash key that agents receive in hello.ok is derived from the link key.
    linkKey.grantRead(messageFn);

    const authorizer = new WebSocketLambdaAuthorizer('AgentKeyAuthorizer', authorizerFn, {
      identitySource: ['route.request.header.Authorization'],
    });
    wsApi.addRoute('$connect', { integration: new WebSocketLambdaIntegration('Connect', fn(WS_HANDLERS.connect)), authorizer });
    wsApi.addRoute('$disconnect', { integration: new WebSocketLambdaIntegration('Disconnect', fn(WS_HANDLERS.disconnect)) });
    const messageIntegration = new WebSocketLambdaIntegration('Message', fn(WS_HANDLERS.message));
    for (const route of [...WS_MESSAGE_ROUTES, '$default']) wsApi.addRoute(route, { integration: messageIntegration });

    const streamFn = fn(POLICY_STREAM_HANDLER);
    this.tables.policies.grantReadData(streamFn);
    this.tables.connections.grantReadWriteData(streamFn);
    this.tables.agents.grantReadWriteData(streamFn);
    wsStage.grantManagementApiAccess(streamFn);
    streamFn.addEventSource(
      new DynamoEventSource(this.tables.policies, {
        startingPosition: StartingPosition.LATEST,
        batchSize: 10,
        retryAttempts: 5,
        bisectBatchOnError: true,
        maxRecordAge: Duration.hours(1),
      }),
    );

    // The approval workflow: the real ASL file, its task functions substituted in, least-privilege role.
    const workflowFns = Object.fromEntries(Object.values(APPROVAL_WORKFLOW_TASKS).map((t) => [t.substitution, fn(t)]));
    for (const f of Object.values(workflowFns)) {
      this.tables.approvals.grantReadWriteData(f);
      this.tables.connections.grantReadWriteData(f);
    }
    const notifyFn = fn(APPROVAL_WORKFLOW_TASKS.NotifyReviewersAndWait);
    sender.grantSendEmail(notifyFn);
    linkKey.grantRead(notifyFn);
    wsStage.grantManagementApiAccess(fn(APPROVAL_WORKFLOW_TASKS.NotifyAgent));
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
    const startsWorkflow = fn(WS_HANDLERS.message);
    startsWorkflow.addEnvironment('APPROVAL_STATE_MACHINE_ARN', this.approvalWorkflow.stateMachineArn);
    this.approvalWorkflow.grantStartExecution(startsWorkflow);

    const httpApi = new HttpApi(this, 'HttpApi', { apiName: 'twokey-http', createDefaultStage: true });
    const jwt = new HttpJwtAuthorizer('OidcAuthorizer', props.oidcIssuer, { jwtAudience: [props.oidcAudience] });
    notifyFn.addEnvironment('PUBLIC_URL', httpApi.apiEndpoint);
    for (const route of HTTP_ROUTES) {
      const f = fn(route);
      if (route.entry === 'agents-http') this.tables.agents.grantReadWriteData(f);
      if (route.entry === 'sessions-http') {
        this.tables.sessions.grantReadData(f);
        this.tables.auditEvents.grantWriteData(f);
        // Presigned GET URLs for auditors carry this function's permission: read under recordings/ only.
        f.addToRolePolicy(new PolicyStatement({ actions: ['s3:GetObject'], resources: [this.recordings.arnForObjects('recordings/*')] }));
        dataKey.grantDecrypt(f);
      }
      if (route.entry === 'approvals-http') {
        this.tables.approvals.grantReadWriteData(f);
        this.tables.connections.grantReadWriteData(f);
        linkKey.grantRead(f);
        wsStage.grantManagementApiAccess(f);
        f.addEnvironment('APPROVAL_STATE_MACHINE_ARN', this.approvalWorkflow.stateMachineArn);
        this.approvalWorkflow.grantTaskResponse(f);
      }
      this.tables.policies.grantReadWriteData(f);
      const [added] = httpApi.addRoutes({
        path: route.path,
        methods: [HttpMethod[route.method]],
        integration: new HttpLambdaIntegration(`${route.entry}-${route.export}`, f),
        authorizer: route.auth === 'oidc' ? jwt : undefined,
      });
      if (route.auth === 'link' && added) this.linkRoutes.push(added);
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
    httpStage.defaultRouteSettings = { throttlingRateLimit: 50, throttlingBurstLimit: 100 };

    new CfnOutput(this, 'HttpApiUrl', { value: httpApi.apiEndpoint });
    new CfnOutput(this, 'TunnelUrl', { value: wsStage.url });
    new CfnOutput(this, 'RecordingsBucketName', { value: this.recordings.bucketName });
  }
}
