import { Stack, Validations, type CfnElement } from 'aws-cdk-lib';
import type { Policy } from 'aws-cdk-lib/aws-iam';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { IConstruct } from 'constructs';
import type { HttpRoute } from '../lambdas/routes';
import { TABLES, type TableDefinition, type TableKey } from '../lambdas/store/table-definitions';
import { WS_STAGE, type ControlPlaneStack } from './control-plane-stack';

interface Statement {
  readonly Action: string | string[];
  readonly Resource: unknown;
}

/** The statements of a function's own policy, resolved as they will be in the template. */
function statementsOf(fn: NodejsFunction): Statement[] {
  const policy = fn.role?.node.tryFindChild('DefaultPolicy') as Policy | undefined;
  if (!policy) return [];
  return (Stack.of(fn).resolve(policy.document.toJSON()) as { Statement: Statement[] }).Statement;
}

/** Whether the function holds an action (exactly as written) on a resource whose text contains `resource`. */
function holds(fn: NodejsFunction, action: string, resource = ''): boolean {
  return statementsOf(fn).some((st) => [st.Action].flat().includes(action) && JSON.stringify(st.Resource).includes(resource));
}

/**
 * Every cdk-nag acknowledgement, each on the narrowest construct it concerns and with the reason a
 * security reviewer would read: a function is acknowledged only for a permission it holds.
 */
/** Why each kind of route has no API Gateway authorizer: its credential is in the request, checked by the handler. */
const SELF_AUTHENTICATION: Record<Exclude<HttpRoute['auth'], 'oidc'>, string> = {
  link: 'Approval review routes are reached from an email link by reviewers who may hold no session: the signed, expiring, single-use link token bound to one reviewer and one request is the credential, checked by the handler before anything is shown or decided.',
  slack: "Slack's interactivity requests carry no bearer token: the handler verifies Slack's HMAC signature over the exact body with the app's signing secret and a timestamp within five minutes before reading anything.",
  saml: 'SAML sign-in routes are reached by browsers before the user holds any token: metadata is public, the login route only redirects to the IdP, and the ACS accepts nothing but an assertion signed by the configured IdP for this service provider, answering a request it sent, once.',
  public: "The control plane's token issuer publishes its discovery document and public keys for agents to verify its tokens with, as every OpenID issuer does: nothing secret, nothing changed.",
};

export function applyNagSuppressions(stack: ControlPlaneStack): void {
  const ack = (scope: IConstruct, id: string, reason: string): void => Validations.of(scope).acknowledge({ id: `AwsSolutions::${id}`, reason });
  const bucketId = stack.getLogicalId(stack.recordings.node.defaultChild as CfnElement);

  for (const fn of stack.functions) {
    ack(
      fn,
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      "AWSLambdaBasicExecutionRole only allows writing the function's own CloudWatch Logs (logs:CreateLogStream, logs:PutLogEvents); it grants no data access.",
    );
    ack(
      fn,
      'AwsSolutions-IAM5[Resource::*]',
      'X-Ray tracing: xray:PutTraceSegments and xray:PutTelemetryRecords do not support resource-level permissions, so AWS documents Resource "*" for them.',
    );
    if (holds(fn, 'kms:GenerateDataKey*')) {
      ack(fn, 'AwsSolutions-IAM5[Action::kms:GenerateDataKey*]', 'Writes to tables or objects under the one customer-managed data key: the wildcard covers the GenerateDataKey variants only, and the resource is that single key ARN.');
    }
    if (holds(fn, 'kms:ReEncrypt*')) {
      ack(fn, 'AwsSolutions-IAM5[Action::kms:ReEncrypt*]', 'Writes under the one customer-managed data key: the wildcard covers ReEncryptFrom/ReEncryptTo only, and the resource is that single key ARN.');
    }
    if (holds(fn, 'execute-api:ManageConnections')) {
      ack(
        fn,
        `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<TunnelApiCE3828D8>/${WS_STAGE}/*/@connections/*]`,
        'execute-api:ManageConnections on the tunnel API stage only: connection ids are assigned at run time, so the connection segment must be a wildcard.',
      );
    }
    if (holds(fn, 's3:PutObject', bucketId) || holds(fn, 's3:GetObject', bucketId)) {
      ack(
        fn,
        `AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/recordings/*]`,
        'Recording chunks are written (message handler: PutObject) or read (recording download: GetObject) under keys made per session at run time (recordings/<date>/<session>/<seq>); the grant is limited to that prefix and to that one action (no delete, and Object Lock retains objects).',
      );
    }
    for (const [key, def] of Object.entries(TABLES) as [TableKey, TableDefinition][]) {
      const tableId = stack.getLogicalId(stack.tables[key].node.defaultChild as CfnElement);
      if (def.indexes && holds(fn, 'dynamodb:Query', tableId)) {
        ack(fn, `AwsSolutions-IAM5[Resource::<${tableId}.Arn>/index/*]`, `Queries of the ${def.logicalName} table use its GSIs (${def.indexes.map((i) => i.name).join(', ')}); the index wildcard is scoped to this one table.`);
      }
    }
    if (holds(fn, 'ses:SendEmail')) {
      ack(
        fn,
        'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ses:<AWS::Region>:<AWS::AccountId>:identity/*]',
        "SES authorizes a send against each identity it involves, recipients included while the account is in the SES sandbox (they are verified identities there): the statement covers this account's identities, and its ses:FromAddress condition allows the configured sender only.",
      );
    }
  }
  for (const { route, auth } of stack.selfAuthenticatedRoutes) ack(route, 'AwsSolutions-APIG4', SELF_AUTHENTICATION[auth]);
  const workflow = stack.approvalWorkflow;
  ack(
    workflow,
    'AwsSolutions-IAM5[Resource::*]',
    'Step Functions X-Ray tracing and CloudWatch Logs delivery (xray:PutTraceSegments, logs:CreateLogDelivery and related) do not support resource-level permissions; AWS documents Resource "*" for them.',
  );
  for (const fn of stack.workflowFunctions) {
    const name = stack.getLogicalId(fn.node.defaultChild as CfnElement);
    ack(
      workflow,
      `AwsSolutions-IAM5[Resource::<${name}.Arn>:*]`,
      'lambda:InvokeFunction on one workflow task function and its versions/aliases (the ":*" suffix CDK adds for qualified ARNs); no other function is reachable.',
    );
  }
  if (stack.apiGatewayRole) {
    ack(
      stack.apiGatewayRole,
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
      "The account's API Gateway logging role: AWS's managed policy for it lets API Gateway create and write its own log groups (execution and access logs), which it names per API and stage at run time.",
    );
  }
  ack(
    stack,
    'AwsSolutions-SMG4',
    'The approval-link signing key is not rotated automatically: rotation would invalidate every outstanding link mid-review. Links expire with their request (7 days at most); operators rotate by setting a new value between approval windows.',
  );
  for (const secret of Object.values(stack.identitySecrets)) {
    ack(secret, 'AwsSolutions-SMG4', "Issued by another system (Slack's app settings, the identity provider's client): it is rotated there and its new value put here; Secrets Manager has no rotation function for it.");
  }
  if (stack.tokenSigningKey) {
    ack(stack.tokenSigningKey, 'AwsSolutions-KMS5', "KMS rotates symmetric keys only; this asymmetric signing key is replaced by a new key (agents refetch the issuer's JWKS on an unknown kid).");
  }
  ack(
    stack.tunnelApi,
    'AwsSolutions-APIG4',
    'API Gateway WebSocket APIs authorize only $connect: every agent connection passes the agent-key Lambda authorizer there, and $disconnect and the message routes run on that authenticated connection (handlers look the agent up by connection id).',
  );
}
