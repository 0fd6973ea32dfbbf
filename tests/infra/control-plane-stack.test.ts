import { App, Validations, type CfnElement } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp, propsFromContext } from '../../infra/app';
import { ControlPlaneStack } from '../../infra/control-plane-stack';
import type { Key } from 'aws-cdk-lib/aws-kms';
import type { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { APPROVAL_ASL_FILE, LAMBDA_BUNDLING, LAMBDA_TIMEOUT_SECONDS } from '../../infra/control-plane-stack';
import { APPROVAL_WORKFLOW_TASKS, HTTP_ROUTES, POLICY_STREAM_HANDLER, WS_HANDLERS, type HttpRoute } from '../../lambdas/routes';
import { readConfig } from '../../lambdas/shared/config';
import { SDK_CONNECTION_TIMEOUT_MS, SDK_MAX_ATTEMPTS, SDK_REQUEST_TIMEOUT_MS } from '../../lambdas/shared/sdk-limits';

/** Deploy settings of a test deployment (documentation domains, so they must be allowed explicitly). */
const SETTINGS = { oidcIssuer: 'https://login.example.com/', oidcAudience: 'twokey', senderEmail: 'twokey@example.com', allowPlaceholders: 'true' };

/** Skips esbuild bundling: the template is the same apart from asset hashes, and synth is seconds faster. */
const testApp = (context: Record<string, unknown> = {}) =>
  new App({ outdir: mkdtempSync(join(tmpdir(), 'tk-cdk-')), context: { 'aws:cdk:bundling-stacks': [], ...SETTINGS, ...context } });

type PolicyStatement = { Action: string | string[]; Resource: unknown; Condition?: unknown };

/** The statements of the role policy of the function that serves `ref`. */
function roleStatements(stack: ControlPlaneStack, template: Template, ref: { entry: string; export: string }): PolicyStatement[] {
  const fn = stack.node.findChild(`${functionName(ref)}Fn`);
  const roleId = stack.getLogicalId((fn as unknown as { role: { node: { defaultChild: CfnElement } } }).role.node.defaultChild);
  const policies = Object.values(template.findResources('AWS::IAM::Policy')) as { Properties: { Roles: { Ref: string }[]; PolicyDocument: { Statement: PolicyStatement[] } } }[];
  return policies.filter((p) => p.Properties.Roles.some((r) => r.Ref === roleId)).flatMap((p) => p.Properties.PolicyDocument.Statement);
}
const functionName = (ref: { entry: string; export: string }): string => `${ref.entry}-${ref.export}`.replace(/(^|-)(\w)/g, (_m, _d, c: string) => c.toUpperCase());
const allows = (statements: PolicyStatement[], action: string, resource = ''): boolean =>
  statements.some((st) => [st.Action].flat().some((a) => a === action || (a.endsWith('*') && action.startsWith(a.slice(0, -1)))) && JSON.stringify(st.Resource).includes(resource));

describe('ControlPlaneStack', () => {
  const { app, stack } = buildApp(testApp({ deletionProtection: 'true', recordingRetentionDays: '400', objectLockMode: 'COMPLIANCE' }));
  const template = Template.fromStack(stack);

  it('passes the cdk-nag AwsSolutions pack with every acknowledgement explained', () => {
    expect(() => app.synth()).not.toThrow();
  });

  it('fails cdk-nag without the acknowledgements (the check is live)', () => {
    const bare = testApp();
    new ControlPlaneStack(bare, 'Bare', propsFromContext(bare));
    Validations.of(bare).addPlugins(new AwsSolutionsChecks(bare));
    expect(() => bare.synth()).toThrow(/AwsSolutions-IAM4/);
  });

  it('has one function per handler, on a current Node runtime with log retention', () => {
    const handlers = new Set([...HTTP_ROUTES, ...Object.values(WS_HANDLERS), POLICY_STREAM_HANDLER, ...Object.values(APPROVAL_WORKFLOW_TASKS)].map((h) => `${h.entry}.${h.export}`));
    template.resourceCountIs('AWS::Lambda::Function', handlers.size);
    template.allResourcesProperties('AWS::Lambda::Function', { Runtime: 'nodejs24.x', TracingConfig: { Mode: 'Active' } });
    template.allResourcesProperties('AWS::Logs::LogGroup', { RetentionInDays: 365 });
  });

  it('gives every function the environment its configuration requires at cold start', () => {
    const failures: string[] = [];
    for (const [id, fn] of Object.entries(template.findResources('AWS::Lambda::Function'))) {
      const variables = (fn.Properties?.Environment?.Variables ?? {}) as Record<string, unknown>;
      // Deploy-time references (table names, ARNs) stand in as placeholders: only their presence matters here.
      const env = Object.fromEntries(Object.entries(variables).map(([k, v]) => [k, typeof v === 'string' ? v : `resolved-${k}`]));
      try {
        readConfig(env);
      } catch (e) {
        failures.push(`${id}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it('routes agent messages on type and authorizes $connect with the agent-key authorizer', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', { ProtocolType: 'WEBSOCKET', RouteSelectionExpression: '$request.body.type' });
    template.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', { AuthorizerType: 'REQUEST', IdentitySource: ['route.request.header.Authorization'] });
    template.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: '$connect', AuthorizationType: 'CUSTOM' });
    for (const key of ['hello', 'policy.get', 'heartbeat', '$default', '$disconnect']) {
      template.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: key });
    }
  });

  it("puts every admin route behind the OIDC JWT authorizer, and only review links, Slack presses, SAML sign-in and the token issuer's public keys outside it", () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', { AuthorizerType: 'JWT', JwtConfiguration: { Audience: ['twokey'] } });
    for (const route of HTTP_ROUTES) {
      template.hasResourceProperties('AWS::ApiGatewayV2::Route', {
        RouteKey: `${route.method} ${route.path}`,
        AuthorizationType: route.auth === 'oidc' ? 'JWT' : 'NONE',
      });
    }
    expect(HTTP_ROUTES.filter((r) => r.auth !== 'oidc').map((r) => `${r.auth} ${r.method} ${r.path}`)).toEqual([
      'link GET /approvals/review',
      'link POST /approvals/review',
      'link GET /approvals/sign-in',
      'link GET /approvals/sign-in/callback',
      'slack POST /slack/interactions',
      'saml GET /saml/metadata',
      'saml GET /saml/login',
      'saml POST /saml/acs',
      'public GET /tokens/.well-known/openid-configuration',
      'public GET /tokens/jwks.json',
    ]);
  });

  it('builds the approval state machine from the ASL file, with a timeout on the callback task', () => {
    const asl = readFileSync(APPROVAL_ASL_FILE, 'utf8');
    const machines = template.findResources('AWS::StepFunctions::StateMachine');
    const [machine] = Object.values(machines) as { Properties: { DefinitionS3Location: { Key: string }; DefinitionSubstitutions: Record<string, unknown> } }[];
    // DefinitionBody.fromFile ships the file itself as an asset: the staged asset is the ASL file, unchanged.
    const hash = machine?.Properties.DefinitionS3Location.Key.replace(/\.json$/, '') ?? '';
    const staged = readFileSync(join(app.synth().directory, `asset.${hash}.json`), 'utf8');
    expect(createHash('sha256').update(staged).digest('hex')).toBe(createHash('sha256').update(asl).digest('hex'));
    expect(Object.keys(machine?.Properties.DefinitionSubstitutions ?? {}).sort()).toEqual(['ApplyPolicyChangeFunction', 'NotifyAgentFunction', 'NotifyReviewersFunction', 'RecordOutcomeFunction', 'RecordPendingFunction']);
    const definition = JSON.parse(asl) as { States: Record<string, { Resource?: string; TimeoutSecondsPath?: string; TimeoutSeconds?: number; Catch?: { ErrorEquals: string[] }[] }> };
    const callback = Object.values(definition.States).find((st) => st.Resource?.endsWith('.waitForTaskToken'));
    expect(callback?.TimeoutSecondsPath ?? callback?.TimeoutSeconds).toBeDefined();
    expect(callback?.Catch?.some((c) => c.ErrorEquals.includes('States.Timeout'))).toBe(true);
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', { TracingConfiguration: { Enabled: true }, LoggingConfiguration: Match.objectLike({ Level: 'ALL' }) });
  });

  it('keeps tables on demand, recoverable, encrypted and protected, with a stream on policies', () => {
    template.resourceCountIs('AWS::DynamoDB::Table', 9);
    template.allResourcesProperties('AWS::DynamoDB::Table', {
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      DeletionProtectionEnabled: true,
      SSESpecification: { SSEEnabled: true, SSEType: 'KMS' },
    });
    template.hasResourceProperties('AWS::DynamoDB::Table', { StreamSpecification: { StreamViewType: 'NEW_IMAGE' } });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', { StartingPosition: 'LATEST', BisectBatchOnFunctionError: true });
  });

  it('expires stale connections and old decided requests by TTL, and indexes what hot paths look up', () => {
    const ttl = Object.values(template.findResources('AWS::DynamoDB::Table', { Properties: { TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true } } }));
    expect(ttl).toHaveLength(4);
    for (const index of ['byAgent', 'undeliveredByAgent', 'byMonth', 'byPrincipal']) {
      template.hasResourceProperties('AWS::DynamoDB::Table', { GlobalSecondaryIndexes: Match.arrayWith([Match.objectLike({ IndexName: index })]) });
    }
  });

  it('indexes approval requests by month and keeps an inbox per principal, expiring by TTL', () => {
    const tables = template.findResources('AWS::DynamoDB::Table') as Record<string, { Properties: { GlobalSecondaryIndexes?: { IndexName: string; KeySchema: unknown }[]; KeySchema: unknown; TimeToLiveSpecification?: unknown } }>;
    const approvals = tables[tableId('approvals')]?.Properties;
    expect(approvals?.GlobalSecondaryIndexes?.find((ix) => ix.IndexName === 'byMonth')?.KeySchema).toEqual([
      { AttributeName: 'month', KeyType: 'HASH' },
      { AttributeName: 'createdAt', KeyType: 'RANGE' },
    ]);
    const inbox = tables[tableId('approvalInbox')]?.Properties;
    expect(inbox?.KeySchema).toEqual([
      { AttributeName: 'principal', KeyType: 'HASH' },
      { AttributeName: 'entry', KeyType: 'RANGE' },
    ]);
    expect(inbox?.TimeToLiveSpecification).toEqual({ AttributeName: 'ttl', Enabled: true });
  });

  it('lets the approvals listing read the inbox, and only the two places that create requests write it', () => {
    const list = statementsFor(HTTP_ROUTES.find((r) => r.entry === 'approvals-http' && r.export === 'list') as HttpRoute);
    expect([allows(list, 'dynamodb:Query', tableId('approvalInbox')), allows(list, 'dynamodb:BatchGetItem', tableId('approvals')), allows(list, 'dynamodb:PutItem', tableId('approvalInbox'))]).toEqual([true, true, false]);
    const writers = [...HTTP_ROUTES, ...Object.values(WS_HANDLERS), POLICY_STREAM_HANDLER, ...Object.values(APPROVAL_WORKFLOW_TASKS)]
      .filter((r) => allows(statementsFor(r), 'dynamodb:PutItem', tableId('approvalInbox')))
      .map((r) => `${r.entry}.${r.export}`);
    expect(writers.sort()).toEqual(['policies-http.put', 'tunnel-ws.message']);
  });

  it('lets only the SSH key routes write registered keys, and the tunnel read them for hello', () => {
    const writers = [...HTTP_ROUTES, ...Object.values(WS_HANDLERS), POLICY_STREAM_HANDLER, ...Object.values(APPROVAL_WORKFLOW_TASKS)]
      .filter((r) => allows(statementsFor(r), 'dynamodb:PutItem', tableId('sshKeys')) || allows(statementsFor(r), 'dynamodb:DeleteItem', tableId('sshKeys')))
      .map((r) => `${r.entry}.${r.export}`);
    expect(writers.sort()).toEqual(['ssh-keys-http.add', 'ssh-keys-http.remove']);
    const list = statementsFor(HTTP_ROUTES.find((r) => r.entry === 'ssh-keys-http' && r.export === 'list') as HttpRoute);
    expect([allows(list, 'dynamodb:Query', tableId('sshKeys')), allows(list, 'execute-api:ManageConnections')]).toEqual([true, false]);
    expect(allows(statementsFor(HTTP_ROUTES.find((r) => r.entry === 'ssh-keys-http' && r.export === 'add') as HttpRoute), 'execute-api:ManageConnections')).toBe(true);
    expect(allows(statementsFor(WS_HANDLERS.message), 'dynamodb:Query', tableId('sshKeys'))).toBe(true);
  });

  it('stores recordings versioned, object-locked, KMS-encrypted, private and TLS-only', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      ObjectLockEnabled: true,
      ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 400 } } },
      VersioningConfiguration: { Status: 'Enabled' },
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms' }, BucketKeyEnabled: true }] },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      LoggingConfiguration: Match.objectLike({ LogFilePrefix: 'recordings/' }),
    });
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
    });
    template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
  });

  it("creates the SES identity of the sender's domain with DKIM records as outputs, and grants no AWS identity to agents", () => {
    template.hasResourceProperties('AWS::SES::EmailIdentity', { EmailIdentity: 'example.com' });
    expect(Object.keys(template.findOutputs('*')).filter((k) => k.startsWith('SenderDkimRecord'))).toHaveLength(3);
    const roles = template.findResources('AWS::IAM::Role');
    for (const role of Object.values(roles)) {
      const principals = JSON.stringify((role as { Properties: { AssumeRolePolicyDocument: unknown } }).Properties.AssumeRolePolicyDocument);
      expect(principals).toMatch(/lambda\.amazonaws\.com|apigateway\.amazonaws\.com|states\.amazonaws\.com/);
    }
  });

  it('rejects an invalid object-lock mode in context', () => {
    expect(() => propsFromContext(testApp({ objectLockMode: 'NONE' }))).toThrow(/objectLockMode/);
  });

  it('refuses to synthesize without the issuer, audience and sender, or with placeholders for them', () => {
    const bare = (context: Record<string, unknown>) => new App({ outdir: mkdtempSync(join(tmpdir(), 'tk-cdk-')), context });
    const real = { oidcIssuer: 'https://idp.acme.io/', oidcAudience: 'twokey', senderEmail: 'twokey@acme.io' };
    for (const key of Object.keys(real)) {
      const { [key as keyof typeof real]: _left, ...rest } = real;
      expect(() => propsFromContext(bare(rest))).toThrow(new RegExp(`context ${key} is not set`));
    }
    expect(() => propsFromContext(bare({ ...real, oidcIssuer: 'https://login.example.com/' }))).toThrow(/oidcIssuer is a placeholder/);
    expect(() => propsFromContext(bare({ ...real, senderEmail: 'twokey@example.com' }))).toThrow(/senderEmail is a placeholder/);
    expect(() => propsFromContext(bare({ ...real, oidcIssuer: 'http://idp.acme.io/' }))).toThrow(/https/);
    expect(propsFromContext(bare(real))).toMatchObject({ oidcIssuer: 'https://idp.acme.io/', senderEmail: 'twokey@acme.io', sesIdentity: 'domain' });
  });

  it("creates the account's API Gateway CloudWatch role before the stages that log, unless told the account has one", () => {
    template.hasResourceProperties('AWS::ApiGateway::Account', { CloudWatchRoleArn: Match.objectLike({ 'Fn::GetAtt': Match.anyValue() }) });
    template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: Match.objectLike({ Statement: [Match.objectLike({ Principal: { Service: 'apigateway.amazonaws.com' } })] }),
      ManagedPolicyArns: [Match.objectLike({ 'Fn::Join': Match.arrayWith([Match.arrayWith([':iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs'])]) })],
    });
    const stages = Object.values(template.findResources('AWS::ApiGatewayV2::Stage')) as { DependsOn?: string[]; Properties: { AccessLogSettings?: unknown } }[];
    expect(stages.length).toBe(2);
    for (const stage of stages) {
      expect(stage.Properties.AccessLogSettings).toBeDefined();
      expect(stage.DependsOn).toContain('ApiGatewayAccount');
    }
    const without = Template.fromStack(buildApp(testApp({ createApiGatewayAccount: 'false' })).stack);
    without.resourceCountIs('AWS::ApiGateway::Account', 0);
  });

  const statementsFor = (ref: { entry: string; export: string }): PolicyStatement[] => roleStatements(stack, template, ref);
  const tableId = (key: keyof ControlPlaneStack['tables']) => stack.getLogicalId(stack.tables[key].node.defaultChild as CfnElement);

  it('gives each function only the permissions its handler uses', () => {
    const writers = [...HTTP_ROUTES].filter((r) => allows(statementsFor(r), 'dynamodb:PutItem', tableId('policies'))).map((r) => `${r.entry}.${r.export}`);
    expect(writers).toEqual(['policies-http.put']);
    for (const ref of HTTP_ROUTES.filter((r) => r.entry === 'sessions-http' && r.export !== 'recording')) {
      const st = statementsFor(ref);
      // (kms:Decrypt they hold: the tables are encrypted under the data key.)
      expect([allows(st, 's3:GetObject'), allows(st, 's3:ListBucket'), allows(st, 'dynamodb:PutItem')]).toEqual([false, false, false]);
    }
    expect(allows(statementsFor(HTTP_ROUTES.find((r) => r.export === 'recording') as HttpRoute), 's3:GetObject')).toBe(true);
    for (const ref of HTTP_ROUTES.filter((r) => r.entry === 'approvals-http' && r.export !== 'vote')) {
      const st = statementsFor(ref);
      expect([allows(st, 'states:SendTaskSuccess'), allows(st, 'execute-api:ManageConnections'), allows(st, 'dynamodb:PutItem')]).toEqual([false, false, false]);
    }
    expect(allows(statementsFor(HTTP_ROUTES.find((r) => r.export === 'list' && r.entry === 'approvals-http') as HttpRoute), 'secretsmanager:GetSecretValue')).toBe(false);
    expect(allows(statementsFor(HTTP_ROUTES.find((r) => r.export === 'vote') as HttpRoute), 'states:SendTaskSuccess')).toBe(true);
    // Agents upload through the message handler's presigned PUTs: it may put, never read or delete, a recording.
    const message = statementsFor(WS_HANDLERS.message);
    expect([allows(message, 's3:PutObject'), allows(message, 's3:GetObject'), allows(message, 's3:DeleteObject')]).toEqual([true, false, false]);
    expect(allows(statementsFor(WS_HANDLERS.authorizer), 'dynamodb:PutItem')).toBe(false);
  });

  it('lets only the reviewer notifier and the emergency policy change send mail, from the sender address, in the SES sandbox too', () => {
    const policyPut = HTTP_ROUTES.find((r) => r.entry === 'policies-http' && r.export === 'put') as HttpRoute;
    for (const ref of [APPROVAL_WORKFLOW_TASKS.NotifyReviewersAndWait, policyPut]) {
      const send = statementsFor(ref).find((st) => [st.Action].flat().includes('ses:SendEmail'));
      expect(send?.Condition).toEqual({ StringEquals: { 'ses:FromAddress': 'twokey@example.com' } });
      expect(JSON.stringify(send?.Resource)).toContain(':identity/*');
    }
    const others = [...HTTP_ROUTES.filter((r) => r !== policyPut), ...Object.values(WS_HANDLERS), POLICY_STREAM_HANDLER, APPROVAL_WORKFLOW_TASKS.RecordPending, APPROVAL_WORKFLOW_TASKS.NotifyAgent, APPROVAL_WORKFLOW_TASKS.ApplyPolicyChange];
    for (const ref of others) expect(allows(statementsFor(ref), 'ses:SendEmail')).toBe(false);
  });

  it('lets the functions that rotate or delete agent keys close connections, and a policy change start its workflow', () => {
    for (const ref of HTTP_ROUTES.filter((r) => r.entry === 'agents-http' && r.export !== 'list')) expect(allows(statementsFor(ref), 'execute-api:ManageConnections')).toBe(true);
    const policyPut = statementsFor(HTTP_ROUTES.find((r) => r.entry === 'policies-http' && r.export === 'put') as HttpRoute);
    expect([allows(policyPut, 'states:StartExecution'), allows(policyPut, 'dynamodb:PutItem', tableId('approvals'))]).toEqual([true, true]);
    expect(allows(statementsFor(APPROVAL_WORKFLOW_TASKS.ApplyPolicyChange), 'dynamodb:PutItem', tableId('policies'))).toBe(true);
  });

  it('alarms on approval workflow failures, agent disconnects and recording gaps', () => {
    template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'ExecutionsFailed', Namespace: 'AWS/States', AlarmActions: Match.anyValue() });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'ExecutionsTimedOut', Namespace: 'AWS/States' });
    template.hasResourceProperties('AWS::Logs::MetricFilter', { FilterPattern: '"agent.disconnected"', MetricTransformations: [Match.objectLike({ MetricName: 'AgentDisconnects' })] });
    template.hasResourceProperties('AWS::Logs::MetricFilter', { FilterPattern: '"session.ended" "incomplete"', MetricTransformations: [Match.objectLike({ MetricName: 'RecordingGaps' })] });
    for (const metric of ['AgentDisconnects', 'RecordingGaps']) template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: metric, Namespace: 'twokey', AlarmActions: Match.anyValue() });
  });

  it('retries notifying reviewers before the request is marked failed, but never past its timeout', () => {
    const definition = JSON.parse(readFileSync(APPROVAL_ASL_FILE, 'utf8')) as { States: Record<string, { Retry?: { ErrorEquals: string[]; MaxAttempts: number }[] }> };
    const retry = definition.States.NotifyReviewersAndWait?.Retry ?? [];
    expect(retry.flatMap((r) => r.ErrorEquals)).toEqual(['States.TaskFailed']);
    expect(retry[0]?.MaxAttempts).toBeGreaterThanOrEqual(2);
  });

  it('bundles the AWS SDK into each function and bounds every SDK call below the function timeout', () => {
    expect(LAMBDA_BUNDLING.externalModules).toEqual([]);
    expect(SDK_MAX_ATTEMPTS * (SDK_CONNECTION_TIMEOUT_MS + SDK_REQUEST_TIMEOUT_MS)).toBeLessThan(LAMBDA_TIMEOUT_SECONDS * 1000);
  });
});

describe('ControlPlaneStack with Slack, SAML and reviewer sign-in', () => {
  const SAML_IDP = { entryPoint: 'https://idp.example.com/sso', idpIssuer: 'https://idp.example.com/saml', idpCert: 'MIIC-test-certificate-body' };
  const REVIEWER_OIDC = { issuer: 'https://login.example.com/', clientId: 'twokey-reviewers' };
  const { app, stack } = buildApp(testApp({ slack: 'true', samlIdp: JSON.stringify(SAML_IDP), reviewerOidc: REVIEWER_OIDC, reviewerOidcClientSecret: 'true' }));
  const template = Template.fromStack(stack);
  const statementsFor = (ref: { entry: string; export: string }): PolicyStatement[] => roleStatements(stack, template, ref);
  const route = (entry: string, name: string): HttpRoute => HTTP_ROUTES.find((r) => r.entry === entry && r.export === name) as HttpRoute;
  const everyHandler = [...HTTP_ROUTES, ...Object.values(WS_HANDLERS), POLICY_STREAM_HANDLER, ...Object.values(APPROVAL_WORKFLOW_TASKS)];
  const envOf = (ref: { entry: string; export: string }): Record<string, unknown> => {
    const fn = stack.node.findChild(`${functionName(ref)}Fn`);
    const id = stack.getLogicalId(fn.node.defaultChild as CfnElement);
    return (template.findResources('AWS::Lambda::Function')[id]?.Properties?.Environment?.Variables ?? {}) as Record<string, unknown>;
  };
  const id = (construct: { node: { defaultChild?: unknown } }): string => stack.getLogicalId(construct.node.defaultChild as CfnElement);
  const holders = (action: string, resource: string): string[] =>
    [...new Set(everyHandler.filter((r) => allows(statementsFor(r), action, resource)).map((r) => `${r.entry}.${r.export}`))].sort();

  it('passes the cdk-nag AwsSolutions pack with the identity settings too', () => {
    expect(() => app.synth()).not.toThrow();
  });

  it("keeps Slack's bot token and signing secret in Secrets Manager under the data key, with no value in the template", () => {
    const secrets = template.findResources('AWS::SecretsManager::Secret');
    const slack = [stack.identitySecrets.slackBotToken, stack.identitySecrets.slackSigningSecret].map((s) => secrets[id(s as Secret)]?.Properties as Record<string, unknown>);
    for (const secret of slack) {
      expect(JSON.stringify(secret.KmsKeyId)).toContain('DataKey');
      expect(secret).not.toHaveProperty('SecretString');
    }
  });

  it("names secrets to the functions only by id, and lets each read only the ones it uses", () => {
    const bot = id(stack.identitySecrets.slackBotToken as Secret);
    const signing = id(stack.identitySecrets.slackSigningSecret as Secret);
    const client = id(stack.identitySecrets.reviewerClientSecret as Secret);
    expect(holders('secretsmanager:GetSecretValue', signing)).toEqual(['slack-http.interactions']);
    expect(holders('secretsmanager:GetSecretValue', bot)).toEqual(['approval-workflow.notify', 'approval-workflow.outcome', 'slack-http.interactions']);
    expect(holders('secretsmanager:GetSecretValue', client)).toEqual(['approvals-http.signInCallback']);
    expect(envOf(route('slack-http', 'interactions'))).toMatchObject({ SLACK_BOT_TOKEN_SECRET_ID: { Ref: bot }, SLACK_SIGNING_SECRET_ID: { Ref: signing } });
    expect(envOf(route('approvals-http', 'signInCallback'))).toMatchObject({ REVIEWER_OIDC_CLIENT_SECRET_ID: { Ref: client }, REVIEWER_OIDC: JSON.stringify(REVIEWER_OIDC) });
    expect(envOf(route('approvals-http', 'signIn'))).not.toHaveProperty('REVIEWER_OIDC_CLIENT_SECRET_ID');
    // Every reference to a secret in any function's environment is its id, under a *_SECRET_ID name.
    for (const ref of everyHandler) {
      for (const [name, value] of Object.entries(envOf(ref))) {
        if ([bot, signing, client].some((s) => JSON.stringify(value).includes(s))) expect(name).toMatch(/_SECRET_ID$/);
      }
    }
  });

  it("signs the control plane's tokens with an ECC_NIST_P256 KMS key that only the assertion consumer may sign with", () => {
    const key = id(stack.tokenSigningKey as Key);
    template.hasResourceProperties('AWS::KMS::Key', { KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' });
    expect(holders('kms:Sign', key)).toEqual(['saml-http.acs']);
    expect(holders('kms:GetPublicKey', key)).toEqual(['saml-http.acs', 'token-issuer-http.jwks']);
    for (const action of ['kms:Decrypt', 'kms:Encrypt', 'kms:Verify', 'kms:*']) expect(holders(action, key)).toEqual([]);
    // The key policy names the account alone: every use goes through the one function's role policy above.
    const policy = template.findResources('AWS::KMS::Key')[key]?.Properties?.KeyPolicy as { Statement: { Principal: unknown }[] };
    expect(policy.Statement.map((st) => JSON.stringify(st.Principal))).toEqual([expect.stringContaining(':root')]);
  });

  it('tells the SAML, issuer and agent-registration functions the token issuer and key, and the SAML ones the IdP', () => {
    const key = id(stack.tokenSigningKey as Key);
    for (const ref of [...HTTP_ROUTES.filter((r) => r.entry === 'saml-http' || r.entry === 'token-issuer-http'), route('agents-http', 'register')]) {
      const env = envOf(ref);
      expect(JSON.stringify(env.TOKEN_SIGNER)).toContain(key);
      expect(JSON.stringify(env.TOKEN_SIGNER)).toContain('twokey-data');
      expect(env.PUBLIC_URL).toBeDefined();
      expect(env.SAML_IDP === undefined).toBe(ref.entry !== 'saml-http');
    }
    expect(JSON.parse(envOf(route('saml-http', 'acs')).SAML_IDP as string)).toMatchObject(SAML_IDP);
    for (const ref of [route('approvals-http', 'review'), route('approvals-http', 'vote'), APPROVAL_WORKFLOW_TASKS.NotifyReviewersAndWait]) expect(envOf(ref).PUBLIC_URL).toBeDefined();
  });

  it('gives every function the environment its configuration requires at cold start', () => {
    const failures: string[] = [];
    for (const ref of everyHandler) {
      const env = Object.fromEntries(Object.entries(envOf(ref)).map(([k, v]) => [k, typeof v === 'string' ? v : k === 'TOKEN_SIGNER' ? JSON.stringify({ audience: 'twokey-data', kmsKeyId: 'arn' }) : `resolved-${k}`]));
      try {
        readConfig(env);
      } catch (e) {
        failures.push(`${ref.entry}.${ref.export}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it('names the secrets to fill in and the token issuer in the outputs', () => {
    expect(Object.keys(template.findOutputs('*')).filter((k) => k.endsWith('SecretArn') || k === 'TokenIssuer').sort()).toEqual(['ReviewerClientSecretSecretArn', 'SlackBotTokenSecretArn', 'SlackSigningSecretSecretArn', 'TokenIssuer']);
  });

  it('routes Slack presses and the token issuer on the HTTP API without the JWT authorizer', () => {
    for (const key of ['POST /slack/interactions', 'GET /tokens/.well-known/openid-configuration', 'GET /tokens/jwks.json']) {
      template.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: key, AuthorizationType: 'NONE' });
    }
  });

  it('refuses identity settings that are invalid or would put a secret in the template', () => {
    expect(() => propsFromContext(testApp({ samlIdp: '{"entryPoint":"not a url"}' }))).toThrow(/context samlIdp is invalid/);
    expect(() => propsFromContext(testApp({ samlIdp: '{' }))).toThrow(/samlIdp is not JSON/);
    expect(() => propsFromContext(testApp({ reviewerOidc: { ...REVIEWER_OIDC, clientSecret: 'in-clear' } }))).toThrow(/reviewerOidc is invalid/);
    expect(() => propsFromContext(testApp({ reviewerOidcClientSecret: 'true' }))).toThrow(/needs reviewerOidc/);
    const plain = Template.fromStack(buildApp(testApp()).stack);
    plain.resourceCountIs('AWS::SecretsManager::Secret', 1);
    expect(Object.values(plain.findResources('AWS::KMS::Key')).map((k) => (k.Properties as { KeyUsage?: string }).KeyUsage)).not.toContain('SIGN_VERIFY');
  });
});
