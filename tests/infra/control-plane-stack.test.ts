import { App, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp, propsFromContext } from '../../infra/app';
import { ControlPlaneStack } from '../../infra/control-plane-stack';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { APPROVAL_ASL_FILE } from '../../infra/control-plane-stack';
import { APPROVAL_WORKFLOW_TASKS, HTTP_ROUTES, POLICY_STREAM_HANDLER, WS_HANDLERS } from '../../lambdas/routes';

/** Skips esbuild bundling: the template is the same apart from asset hashes, and synth is seconds faster. */
const testApp = (context: Record<string, unknown> = {}) =>
  new App({ outdir: mkdtempSync(join(tmpdir(), 'tk-cdk-')), context: { 'aws:cdk:bundling-stacks': [], ...context } });

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

  it('routes agent messages on type and authorizes $connect with the agent-key authorizer', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', { ProtocolType: 'WEBSOCKET', RouteSelectionExpression: '$request.body.type' });
    template.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', { AuthorizerType: 'REQUEST', IdentitySource: ['route.request.header.Authorization'] });
    template.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: '$connect', AuthorizationType: 'CUSTOM' });
    for (const key of ['hello', 'policy.get', 'heartbeat', '$default', '$disconnect']) {
      template.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: key });
    }
  });

  it('puts every admin route behind the OIDC JWT authorizer, and only review links outside it', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', { AuthorizerType: 'JWT', JwtConfiguration: { Audience: ['twokey'] } });
    for (const route of HTTP_ROUTES) {
      template.hasResourceProperties('AWS::ApiGatewayV2::Route', {
        RouteKey: `${route.method} ${route.path}`,
        AuthorizationType: route.auth === 'oidc' ? 'JWT' : 'NONE',
      });
    }
    expect(HTTP_ROUTES.filter((r) => r.auth === 'link').map((r) => r.path)).toEqual(['/approvals/review', '/approvals/review']);
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
    template.resourceCountIs('AWS::DynamoDB::Table', 6);
    template.allResourcesProperties('AWS::DynamoDB::Table', {
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      DeletionProtectionEnabled: true,
      SSESpecification: { SSEEnabled: true, SSEType: 'KMS' },
    });
    template.hasResourceProperties('AWS::DynamoDB::Table', { StreamSpecification: { StreamViewType: 'NEW_IMAGE' } });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', { StartingPosition: 'LATEST', BisectBatchOnFunctionError: true });
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

  it('creates the SES sender identity from context and grants no AWS identity to agents', () => {
    template.hasResourceProperties('AWS::SES::EmailIdentity', { EmailIdentity: 'twokey@example.com' });
    const roles = template.findResources('AWS::IAM::Role');
    for (const role of Object.values(roles)) {
      const principals = JSON.stringify((role as { Properties: { AssumeRolePolicyDocument: unknown } }).Properties.AssumeRolePolicyDocument);
      expect(principals).toMatch(/lambda\.amazonaws\.com|apigateway\.amazonaws\.com|states\.amazonaws\.com/);
    }
  });

  it('rejects an invalid object-lock mode in context', () => {
    expect(() => propsFromContext(testApp({ objectLockMode: 'NONE' }))).toThrow(/objectLockMode/);
  });
});
