import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { principalKey, type Identity } from '../../core/identity/identity';
import type { Logger } from '../domain/deps';
import {
  AgentExistsError,
  ForbiddenError,
  InvalidRequestError,
  NotFoundError,
  SshKeyTakenError,
  UnauthorizedError,
  VersionConflictError,
} from '../domain/errors';
import { InvalidPageTokenError } from '../store/page-token';
import type { Runtime } from './runtime';

export const MAX_HTTP_BODY_BYTES = 256 * 1024;

export type HttpResult = APIGatewayProxyStructuredResultV2;

export function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): HttpResult {
  return {
    statusCode,
    headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers },
    body: JSON.stringify(body),
  };
}

function errorBody(code: string, message: string, details?: unknown): { error: { code: string; message: string; details?: unknown } } {
  return { error: details === undefined ? { code, message } : { code, message, details } };
}

/** Typed errors become a status and a stable code; anything else is a 500 that says nothing about internals. */
export function errorResult(e: unknown, log: Logger): HttpResult {
  if (e instanceof UnauthorizedError) return json(401, errorBody('unauthorized', 'a valid bearer token is required'), { 'www-authenticate': 'Bearer' });
  if (e instanceof ForbiddenError) return json(403, errorBody('forbidden', e.message));
  if (e instanceof NotFoundError) return json(404, errorBody('not_found', e.message));
  if (e instanceof InvalidRequestError) return json(400, errorBody('invalid_request', e.message, e.details));
  if (e instanceof InvalidPageTokenError) return json(400, errorBody('invalid_request', e.message));
  if (e instanceof AgentExistsError) return json(409, errorBody('agent_exists', e.message));
  if (e instanceof SshKeyTakenError) return json(409, errorBody('key_taken', e.message));
  if (e instanceof VersionConflictError) return json(409, errorBody('version_conflict', e.message, { currentVersion: e.currentVersion }));
  log.error('http.unhandled', { error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
  return json(500, errorBody('internal', 'internal error'));
}

/** A whole-number query parameter (undefined when absent); anything else is the caller's error. */
export function queryNumber(event: APIGatewayProxyEventV2, name: string): number | undefined {
  const value = event.queryStringParameters?.[name];
  if (value === undefined) return undefined;
  if (!/^\d{1,9}$/.test(value)) throw new InvalidRequestError(`${name} must be a whole number`);
  return Number(value);
}

/** `?limit=&next=` of a paged listing. */
export const pageParams = (event: APIGatewayProxyEventV2): { limit?: number; next?: string } => ({ limit: queryNumber(event, 'limit'), next: event.queryStringParameters?.next });

export function bodyText(event: APIGatewayProxyEventV2): string {
  const raw = event.body ?? '';
  const text = event.isBase64Encoded ? Buffer.from(raw, 'base64').toString('utf8') : raw;
  if (Buffer.byteLength(text, 'utf8') > MAX_HTTP_BODY_BYTES) throw new InvalidRequestError(`body larger than ${MAX_HTTP_BODY_BYTES} bytes`);
  return text;
}

export function bodyJson(event: APIGatewayProxyEventV2): Record<string, unknown> {
  const text = bodyText(event);
  try {
    const value: unknown = JSON.parse(text || '{}');
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // fall through to the error below
  }
  throw new InvalidRequestError('body must be a JSON object');
}

export function header(event: APIGatewayProxyEventV2, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [k, v] of Object.entries(event.headers ?? {})) if (k.toLowerCase() === wanted) return v;
  return undefined;
}

/** Verifies the bearer token and requires one of the groups. Why a token failed is logged, not returned. */
export async function requireCaller(event: APIGatewayProxyEventV2, runtime: Runtime, groups: readonly string[]): Promise<Identity> {
  const auth = header(event, 'authorization');
  const token = auth?.match(/^Bearer\s+(\S+)$/i)?.[1];
  if (!token) throw new UnauthorizedError('no bearer token');
  const verified = await runtime.verifier.verify(token);
  if (!verified.ok) {
    runtime.deps.log.warn('http.token.rejected', { reason: verified.error.reason, path: event.rawPath });
    throw new UnauthorizedError('token rejected');
  }
  // An empty list means any authenticated caller; the route filters what they see.
  if (groups.length > 0 && !groups.some((g) => verified.value.groups.includes(g))) {
    runtime.deps.log.warn('http.forbidden', { principal: principalKey(verified.value), path: event.rawPath });
    throw new ForbiddenError(`requires group ${groups.join(' or ')}`);
  }
  return verified.value;
}

/** Wraps a route: runtime once, errors mapped at the edge. */
export function httpRoute(
  component: string,
  getRuntime: (component: string) => Runtime,
  route: (event: APIGatewayProxyEventV2, runtime: Runtime) => Promise<HttpResult>,
): (event: APIGatewayProxyEventV2) => Promise<HttpResult> {
  return async (event) => {
    const runtime = getRuntime(component);
    try {
      return await route(event, runtime);
    } catch (e) {
      return errorResult(e, runtime.deps.log);
    }
  };
}
