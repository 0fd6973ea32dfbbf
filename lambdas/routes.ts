/**
 * Every API route and the handler module that serves it. The CDK stack and local mode both read
 * this table, so a route exists in both or in neither.
 */
export interface HandlerRef {
  /** File under lambdas/, without extension. */
  readonly entry: 'agents-http' | 'policies-http' | 'approvals-http' | 'sessions-http' | 'slack-http' | 'saml-http' | 'ssh-keys-http' | 'token-issuer-http' | 'approval-workflow' | 'tunnel-ws' | 'policy-stream';
  readonly export: string;
}

export interface HttpRoute extends HandlerRef {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  readonly path: string;
  /** `oidc`: a bearer token (API Gateway's JWT authorizer, then the handler); `link`: the signed approval link is the credential; `slack`: Slack's request signature; `saml`: the IdP's signed assertion (or nothing secret: metadata, the login redirect); `public`: nothing secret (the control plane's token issuer's discovery document and public keys). */
  readonly auth: 'oidc' | 'link' | 'slack' | 'saml' | 'public';
}

export const HTTP_ROUTES: readonly HttpRoute[] = [
  { method: 'POST', path: '/agents', entry: 'agents-http', export: 'register', auth: 'oidc' },
  { method: 'GET', path: '/agents', entry: 'agents-http', export: 'list', auth: 'oidc' },
  { method: 'DELETE', path: '/agents/{name}', entry: 'agents-http', export: 'remove', auth: 'oidc' },
  { method: 'PUT', path: '/policies', entry: 'policies-http', export: 'put', auth: 'oidc' },
  { method: 'GET', path: '/policies', entry: 'policies-http', export: 'get', auth: 'oidc' },
  { method: 'GET', path: '/approvals', entry: 'approvals-http', export: 'list', auth: 'oidc' },
  { method: 'GET', path: '/approvals/review', entry: 'approvals-http', export: 'review', auth: 'link' },
  { method: 'POST', path: '/approvals/review', entry: 'approvals-http', export: 'vote', auth: 'link' },
  { method: 'GET', path: '/approvals/sign-in', entry: 'approvals-http', export: 'signIn', auth: 'link' },
  { method: 'GET', path: '/approvals/sign-in/callback', entry: 'approvals-http', export: 'signInCallback', auth: 'link' },
  { method: 'POST', path: '/slack/interactions', entry: 'slack-http', export: 'interactions', auth: 'slack' },
  { method: 'GET', path: '/saml/metadata', entry: 'saml-http', export: 'metadata', auth: 'saml' },
  { method: 'GET', path: '/saml/login', entry: 'saml-http', export: 'login', auth: 'saml' },
  { method: 'POST', path: '/saml/acs', entry: 'saml-http', export: 'acs', auth: 'saml' },
  // The issuer of the control plane's own tokens (config.ts's controlPlaneIssuer: PUBLIC_URL + /tokens).
  { method: 'GET', path: '/tokens/.well-known/openid-configuration', entry: 'token-issuer-http', export: 'discovery', auth: 'public' },
  { method: 'GET', path: '/tokens/jwks.json', entry: 'token-issuer-http', export: 'jwks', auth: 'public' },
  { method: 'POST', path: '/ssh-keys', entry: 'ssh-keys-http', export: 'add', auth: 'oidc' },
  { method: 'GET', path: '/ssh-keys', entry: 'ssh-keys-http', export: 'list', auth: 'oidc' },
  { method: 'DELETE', path: '/ssh-keys', entry: 'ssh-keys-http', export: 'remove', auth: 'oidc' },
  { method: 'GET', path: '/sessions', entry: 'sessions-http', export: 'list', auth: 'oidc' },
  { method: 'GET', path: '/sessions/{id}', entry: 'sessions-http', export: 'get', auth: 'oidc' },
  { method: 'GET', path: '/sessions/{id}/recording', entry: 'sessions-http', export: 'recording', auth: 'oidc' },
];

/** Agent messages are routed on `$request.body.type`. */
export const WS_ROUTE_SELECTION_EXPRESSION = '$request.body.type';
export const WS_MESSAGE_ROUTES = ['hello', 'policy.get', 'ssh.keys.get', 'heartbeat', 'approval.request', 'approval.ack', 'session.start', 'recording.presign', 'session.end'] as const;

export const WS_HANDLERS = {
  authorizer: { entry: 'tunnel-ws', export: 'authorize' },
  connect: { entry: 'tunnel-ws', export: 'connect' },
  disconnect: { entry: 'tunnel-ws', export: 'disconnect' },
  message: { entry: 'tunnel-ws', export: 'message' },
} as const satisfies Record<string, HandlerRef>;

export const POLICY_STREAM_HANDLER: HandlerRef = { entry: 'policy-stream', export: 'handler' };

/** Task states of the approval workflow and the handler each runs (the ASL names them by substitution). */
export const APPROVAL_WORKFLOW_TASKS = {
  RecordPending: { entry: 'approval-workflow', export: 'pending', substitution: 'RecordPendingFunction' },
  NotifyReviewersAndWait: { entry: 'approval-workflow', export: 'notify', substitution: 'NotifyReviewersFunction' },
  RecordDecision: { entry: 'approval-workflow', export: 'outcome', substitution: 'RecordOutcomeFunction' },
  RecordExpired: { entry: 'approval-workflow', export: 'outcome', substitution: 'RecordOutcomeFunction' },
  RecordFailure: { entry: 'approval-workflow', export: 'outcome', substitution: 'RecordOutcomeFunction' },
  NotifyAgent: { entry: 'approval-workflow', export: 'agent', substitution: 'NotifyAgentFunction' },
  ApplyPolicyChange: { entry: 'approval-workflow', export: 'applyPolicy', substitution: 'ApplyPolicyChangeFunction' },
} as const satisfies Record<string, HandlerRef & { substitution: string }>;
