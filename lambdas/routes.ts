/**
 * Every API route and the handler module that serves it. The CDK stack and local mode both read
 * this table, so a route exists in both or in neither.
 */
export interface HandlerRef {
  /** File under lambdas/, without extension. */
  readonly entry: 'agents-http' | 'policies-http' | 'tunnel-ws' | 'policy-stream';
  readonly export: string;
}

export interface HttpRoute extends HandlerRef {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  readonly path: string;
}

export const HTTP_ROUTES: readonly HttpRoute[] = [
  { method: 'POST', path: '/agents', entry: 'agents-http', export: 'register' },
  { method: 'GET', path: '/agents', entry: 'agents-http', export: 'list' },
  { method: 'PUT', path: '/policies', entry: 'policies-http', export: 'put' },
  { method: 'GET', path: '/policies', entry: 'policies-http', export: 'get' },
];

/** Agent messages are routed on `$request.body.type`. */
export const WS_ROUTE_SELECTION_EXPRESSION = '$request.body.type';
export const WS_MESSAGE_ROUTES = ['hello', 'policy.get', 'heartbeat'] as const;

export const WS_HANDLERS = {
  authorizer: { entry: 'tunnel-ws', export: 'authorize' },
  connect: { entry: 'tunnel-ws', export: 'connect' },
  disconnect: { entry: 'tunnel-ws', export: 'disconnect' },
  message: { entry: 'tunnel-ws', export: 'message' },
} as const satisfies Record<string, HandlerRef>;

export const POLICY_STREAM_HANDLER: HandlerRef = { entry: 'policy-stream', export: 'handler' };
