import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { jwtPayload, newPkce, OAuthError, randomState, tokenRequest, type ProviderMetadata, type TokenResponse } from './oauth-client';
import type { LoginSettings } from './token-cache';

/** How long the loopback listener waits for the browser to come back. */
export const BROWSER_LOGIN_TIMEOUT_MS = 5 * 60_000;
export const CALLBACK_PATH = '/callback';

export interface BrowserLoginOptions {
  readonly settings: LoginSettings;
  readonly metadata: ProviderMetadata;
  /** Shows the user the authorization URL (opens a browser, prints it). */
  readonly open: (url: string) => void;
  /** 0 picks a free port (RFC 8252 §7.3); some providers need the registered port. */
  readonly port?: number;
  readonly timeoutMs?: number;
}

const PAGE_RECEIVED = '<!doctype html><title>twokey</title><p>twokey received the sign-in response. Return to the terminal.</p>';

export interface LoopbackCallback {
  readonly redirectUri: string;
  /** The parameters of the first request that carries our `state`. */
  readonly result: Promise<URLSearchParams>;
  close(): void;
}

/**
 * Waits on the loopback interface for the browser to come back (RFC 8252 §7.3, §8.3: 127.0.0.1, not
 * `localhost`). A request with another `state` is answered 400 and ignored: any local process can
 * reach the port, and only the browser we sent holds the state.
 */
export function listenForCallback(state: string, port: number): Promise<LoopbackCallback> {
  let resolveResult!: (params: URLSearchParams) => void;
  const result = new Promise<URLSearchParams>((resolve) => (resolveResult = resolve));
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (req.method !== 'GET' || url.pathname !== CALLBACK_PATH || url.searchParams.get('state') !== state) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('not a twokey sign-in response\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'no-store' }).end(PAGE_RECEIVED);
    resolveResult(url.searchParams);
  });
  const close = (): void => {
    server.closeAllConnections();
    server.close();
  };
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      resolve({ redirectUri: `http://127.0.0.1:${(server.address() as AddressInfo).port}${CALLBACK_PATH}`, result, close });
    });
  });
}

/** The callback's parameters, or a timeout error. */
export async function awaitCallback(callback: LoopbackCallback, timeoutMs: number): Promise<URLSearchParams> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_r, reject) => {
    timer = setTimeout(() => reject(new OAuthError('timeout', `no sign-in within ${timeoutMs / 1000}s`)), timeoutMs);
  });
  try {
    return await Promise.race([callback.result, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** RFC 6749 §4.1.2 and RFC 9207: the code, from our issuer (when it says or is known to say which). */
function codeFrom(params: URLSearchParams, metadata: ProviderMetadata): string {
  const iss = params.get('iss');
  if ((iss !== null || metadata.authorization_response_iss_parameter_supported === true) && iss !== metadata.issuer) {
    throw new OAuthError('issuer_mismatch', `the authorization response came from issuer ${String(iss)}, not ${metadata.issuer}`);
  }
  const error = params.get('error');
  const code = params.get('code');
  if (error !== null || code === null) {
    const description = params.get('error_description')?.slice(0, 200);
    throw new OAuthError(error ?? 'invalid_response', `sign-in refused (${error ?? 'no code'}${description ? `: ${description}` : ''})`);
  }
  return code;
}

/** OAuth 2.0 authorization code with PKCE (RFC 7636, S256) through the user's browser. */
export async function browserLogin(options: BrowserLoginOptions): Promise<TokenResponse> {
  const { settings, metadata } = options;
  if (!metadata.authorization_endpoint) throw new OAuthError('unsupported', `issuer ${metadata.issuer} has no authorization endpoint`);
  const pkce = newPkce();
  const state = randomState();
  const nonce = randomState();
  const callback = await listenForCallback(state, options.port ?? 0);
  try {
    const url = new URL(metadata.authorization_endpoint);
    const params: Record<string, string | undefined> = {
      response_type: 'code',
      client_id: settings.clientId,
      redirect_uri: callback.redirectUri,
      scope: settings.scope,
      state,
      nonce,
      code_challenge: pkce.challenge,
      code_challenge_method: 'S256',
      resource: settings.resource,
      ...settings.extraParams,
    };
    for (const [k, v] of Object.entries(params)) if (v) url.searchParams.set(k, v);
    options.open(url.toString());
    const code = codeFrom(await awaitCallback(callback, options.timeoutMs ?? BROWSER_LOGIN_TIMEOUT_MS), metadata);
    const tokens = await tokenRequest(
      metadata,
      { grant_type: 'authorization_code', code, redirect_uri: callback.redirectUri, code_verifier: pkce.verifier, resource: settings.resource },
      { clientId: settings.clientId },
    );
    // OpenID Connect Core §3.1.3.7: the ID token must carry the nonce of this request.
    if (tokens.id_token !== undefined && jwtPayload(tokens.id_token)?.nonce !== nonce) {
      throw new OAuthError('nonce_mismatch', 'the ID token does not carry this sign-in\'s nonce');
    }
    return tokens;
  } finally {
    callback.close();
  }
}
