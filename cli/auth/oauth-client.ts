import { createHash, randomBytes } from 'node:crypto';

/** Every call to the identity provider is bounded in time and size. */
export const IDP_HTTP_TIMEOUT_MS = 15_000;
export const MAX_IDP_RESPONSE_BYTES = 256 * 1024;
/** RFC 8628 §3.5: poll every `interval` seconds (5 when absent), five more after each `slow_down`. */
export const DEVICE_DEFAULT_INTERVAL_SECONDS = 5;
export const DEVICE_SLOW_DOWN_SECONDS = 5;
export const DEVICE_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:device_code';

/** The provider refused or could not be reached; `code` is the OAuth error code when it sent one. */
export class OAuthError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'OAuthError';
  }
}

export interface ProviderMetadata {
  readonly issuer: string;
  readonly authorization_endpoint?: string;
  readonly token_endpoint: string;
  readonly device_authorization_endpoint?: string;
  readonly revocation_endpoint?: string;
  readonly authorization_response_iss_parameter_supported?: boolean;
}

export interface TokenResponse {
  readonly access_token: string;
  readonly token_type: string;
  readonly expires_in?: number;
  readonly refresh_token?: string;
  readonly id_token?: string;
  readonly scope?: string;
}

/** How a client proves itself at the token endpoint: a public client names itself, a confidential one uses HTTP Basic (RFC 6749 §2.3.1). */
export type ClientAuth = { readonly clientId: string; readonly clientSecret?: string };

async function readBoundedJson(res: Response, what: string): Promise<unknown> {
  const text = await res.text();
  if (Buffer.byteLength(text) > MAX_IDP_RESPONSE_BYTES) throw new OAuthError('invalid_response', `${what}: response too large`);
  try {
    // RFC 7009 §2.2: a revocation answers 200 with no body.
    return text === '' ? {} : (JSON.parse(text) as unknown);
  } catch (e) {
    throw new OAuthError('invalid_response', `${what}: HTTP ${res.status}, not JSON`, { cause: e });
  }
}

async function send(url: string, init: RequestInit, what: string): Promise<{ status: number; body: unknown }> {
  let res: Response;
  try {
    res = await fetch(url, { ...init, redirect: 'error', signal: AbortSignal.timeout(IDP_HTTP_TIMEOUT_MS) });
  } catch (e) {
    throw new OAuthError('unreachable', `${what}: cannot reach ${new URL(url).origin}`, { cause: e });
  }
  return { status: res.status, body: await readBoundedJson(res, what) };
}

/** OpenID Connect Discovery 1.0: the document must name the issuer we asked for (§4.3). */
export async function discover(issuer: string): Promise<ProviderMetadata> {
  const url = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
  const { status, body } = await send(url, { method: 'GET' }, 'discovery');
  const doc = body as Partial<ProviderMetadata>;
  if (status !== 200 || doc.issuer !== issuer || typeof doc.token_endpoint !== 'string') {
    throw new OAuthError('invalid_discovery', `discovery at ${url} does not describe issuer ${issuer}`);
  }
  return doc as ProviderMetadata;
}

/** POSTs a form to an endpoint of the provider and returns the JSON body, or throws the OAuth error it sent (RFC 6749 §5.2). */
export async function postForm(endpoint: string, params: Record<string, string | undefined>, client: ClientAuth, what: string): Promise<Record<string, unknown>> {
  const form = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') form.set(k, v);
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  if (client.clientSecret === undefined) form.set('client_id', client.clientId);
  else {
    // RFC 6749 §2.3.1: both parts form-encoded before Basic.
    const basic = `${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.clientSecret)}`;
    headers.authorization = `Basic ${Buffer.from(basic).toString('base64')}`;
  }
  const { status, body } = await send(endpoint, { method: 'POST', headers, body: form.toString() }, what);
  const obj = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
  if (status >= 400 || typeof obj.error === 'string') {
    const code = typeof obj.error === 'string' ? obj.error : `http_${status}`;
    const description = typeof obj.error_description === 'string' ? `: ${obj.error_description.slice(0, 200)}` : '';
    throw new OAuthError(code, `${what} refused (${code}${description})`);
  }
  return obj;
}

export async function tokenRequest(metadata: ProviderMetadata, params: Record<string, string | undefined>, client: ClientAuth): Promise<TokenResponse> {
  const body = await postForm(metadata.token_endpoint, params, client, 'token request');
  if (typeof body.access_token !== 'string' || typeof body.token_type !== 'string') {
    throw new OAuthError('invalid_response', 'token response has no access_token');
  }
  return body as unknown as TokenResponse;
}

/** RFC 7636 §4.1-4.2: a 43-character verifier and its S256 challenge. */
export function newPkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: pkceChallenge(verifier) };
}

export function pkceChallenge(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}

export function randomState(): string {
  return randomBytes(24).toString('base64url');
}

/** The unverified payload of a JWT the client received straight from the token endpoint (for `exp` and `nonce`; agents verify signatures). */
export function jwtPayload(token: string): Record<string, unknown> | undefined {
  const part = token.split('.')[1];
  if (part === undefined) return undefined;
  try {
    const value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as unknown;
    return value && typeof value === 'object' ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
