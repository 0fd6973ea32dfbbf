import * as agentsHttp from '../../lambdas/agents-http';
import * as approvalWorkflow from '../../lambdas/approval-workflow';
import * as approvalsHttp from '../../lambdas/approvals-http';
import * as policiesHttp from '../../lambdas/policies-http';
import * as policyStream from '../../lambdas/policy-stream';
import * as samlHttp from '../../lambdas/saml-http';
import * as sessionsHttp from '../../lambdas/sessions-http';
import * as slackHttp from '../../lambdas/slack-http';
import * as sshKeysHttp from '../../lambdas/ssh-keys-http';
import type { HandlerRef } from '../../lambdas/routes';
import * as tokenIssuerHttp from '../../lambdas/token-issuer-http';
import * as tunnelWs from '../../lambdas/tunnel-ws';

/** The handler modules, imported statically so the type checker sees every entry the route table names. */
const MODULES: Record<HandlerRef['entry'], Record<string, unknown>> = {
  'agents-http': agentsHttp,
  'approvals-http': approvalsHttp,
  'approval-workflow': approvalWorkflow,
  'policies-http': policiesHttp,
  'policy-stream': policyStream,
  'saml-http': samlHttp,
  'sessions-http': sessionsHttp,
  'slack-http': slackHttp,
  'ssh-keys-http': sshKeysHttp,
  'token-issuer-http': tokenIssuerHttp,
  'tunnel-ws': tunnelWs,
};

export type LambdaHandler<E, R> = (event: E) => Promise<R>;

export function resolveHandler<E, R>(ref: HandlerRef): LambdaHandler<E, R> {
  const fn = MODULES[ref.entry][ref.export];
  if (typeof fn !== 'function') throw new Error(`lambdas/${ref.entry} has no export ${ref.export}`);
  return fn as LambdaHandler<E, R>;
}
