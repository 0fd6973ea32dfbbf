import { Validations, type CfnElement } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import type { HttpRoute } from '../lambdas/routes';
import { WS_STAGE, type ControlPlaneStack } from './control-plane-stack';

/**
 * Every cdk-nag acknowledgement, each on the narrowest construct it concerns and with the reason a
 * security reviewer would read.
 */
/** Why each kind of route has no API Gateway authorizer: its credential is in the request, checked by the handler. */
const SELF_AUTHENTICATION: Record<Exclude<HttpRoute['auth'], 'oidc'>, string> = {
  link: 'Approval review routes are reached from an email link by reviewers who may hold no session: the signed, expiring, single-use link token bound to one reviewer and one request is the credential, checked by the handler before anything is shown or decided.',
  slack: "Slack's interactivity requests carry no bearer token: the handler verifies Slack's HMAC signature over the exact body with the app's signing secret and a timestamp within five minutes before reading anything.",
  saml: 'SAML sign-in routes are reached by browsers before the user holds any token: metadata is public, the login route only redirects to the IdP, and the ACS accepts nothing but an assertion signed by the configured IdP for this service provider, answering a request it sent, once.',
};

export function applyNagSuppressions(stack: ControlPlaneStack): void {
  const ack = (scope: IConstruct, id: string, reason: string): void => Validations.of(scope).acknowledge({ id: `AwsSolutions::${id}`, reason });

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
    ack(
      fn,
      'AwsSolutions-IAM5[Action::kms:GenerateDataKey*]',
      'Table grants on the one customer-managed data key: the wildcard covers the GenerateDataKey variants only, and the resource is that single key ARN.',
    );
    ack(
      fn,
      'AwsSolutions-IAM5[Action::kms:ReEncrypt*]',
      'Table grants on the one customer-managed data key: the wildcard covers ReEncryptFrom/ReEncryptTo only, and the resource is that single key ARN.',
    );
    ack(
      fn,
      `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<TunnelApiCE3828D8>/${WS_STAGE}/*/@connections/*]`,
      'execute-api:ManageConnections on the tunnel API stage only: connection ids are assigned at run time, so the connection segment must be a wildcard.',
    );
  }
  const bucketId = stack.getLogicalId(stack.recordings.node.defaultChild as CfnElement);
  const sessionsId = stack.getLogicalId(stack.tables.sessions.node.defaultChild as CfnElement);
  for (const fn of stack.functions) {
    ack(
      fn,
      `AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/recordings/*]`,
      'Recording chunks are written and read under keys made per session at run time (recordings/<date>/<session>/<seq>); the grant is limited to that prefix and to GetObject/PutObject (no delete, and Object Lock retains objects).',
    );
    ack(
      fn,
      `AwsSolutions-IAM5[Resource::<${sessionsId}.Arn>/index/*]`,
      'Auditor queries use the sessions table GSIs (byTarget, byUser); the index wildcard is scoped to this one table.',
    );
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
  ack(
    stack,
    'AwsSolutions-SMG4',
    'The approval-link signing key is not rotated automatically: rotation would invalidate every outstanding link mid-review. Links expire with their request (7 days at most); operators rotate by setting a new value between approval windows.',
  );
  ack(
    stack.tunnelApi,
    'AwsSolutions-APIG4',
    'API Gateway WebSocket APIs authorize only $connect: every agent connection passes the agent-key Lambda authorizer there, and $disconnect and the message routes run on that authenticated connection (handlers look the agent up by connection id).',
  );
}
