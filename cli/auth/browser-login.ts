import { createServer, type Server } from 'node:http';
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

interface CallbackResult {
  readonly code: string;
}

const PAGE_DONE = '<!doctype html><title>twokey</title><p>Signed in to twokey. You can close this window.</p>';
const PAGE_FAILED = '<!doctype html><title>twokey</title><p>twokey sign-in failed. Return to the terminal.</p>';

/**
 * Waits on the loopback interface for the authorization response (RFC 8252 §7.3, §8.3: 127.0.0.1,
 * not `localhost`). A request with another `state` is answered 400 and ignored: any local process
 * can reach the port, and only the browser we sent holds the state. The issuer in the response
 * (RFC 9207) must be ours when the provider sends one or says it does.
 */
function listenForCallback(
  state: string,
  metadata: ProviderMetadata,
  port: number,
): Promise<{ server: Server; redirectUri: string; result: Promise<CallbackResult> }> {
  let settle!: { resolve: (r: CallbackResult) => void; reject: (e: Error) => void };
  const result = new Promise<CallbackResult>((resolve, reject) => (settle = { resolve, reject }));
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (req.method !== 'GET' || url.pathname !== CALLBACK_PATH || url.searchParams.get('state') !== state) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('not a twokey sign-in response\n');
      return;
    }
    const iss = url.searchParams.get('iss');
    const issRequired = metadata.authorization_response_iss_parameter_supported === true;
    if ((iss !== null || issRequired) && iss !== metadata.issuer) {
      res.writeHead(400, { 'content-type': 'text/html' }).end(PAGE_FAILED);
      settle.reject(new OAuthError('issuer_mismatch', `the authorization response came from issuer ${String(iss)}, not ${metadata.issuer}`));
      return;
    }
    const error = url.searchParams.get('error');
    const code = url.searchParams.get('code');
    if (error !== null || code === null) {
      res.writeHead(400, { 'content-type': 'text/html' }).end(PAGE_FAILED);
      const description = url.searchParams.get('error_description')?.slice(0, 200);
      settle.reject(new OAuthError(error ?? 'invalid_response', `sign-in refused (${error ?? 'no code'}${description ? `: ${description}` : ''})`));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'no-store' }).end(PAGE_DONE);
    settle.resolve({ code });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const redirectUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}${CALLBACK_PATH}`;
      resolve({ server, redirectUri, result });
    });
  });
}

/** OAuth 2.0 authorization code with PKCE (RFC 7636, S256) through the user's browser. */
export async function browserLogin(options: BrowserLoginOptions): Promise<TokenResponse> {
  const { settings, metadata } = options;
  if (!metadata.authorization_endpoint) throw new OAuthError('unsupported', `issuer ${metadata.issuer} has no authorization endpoint`);
  const pkce = newPkce();
  const state = randomState();
  const nonce = randomState();
  const { server, redirectUri, result } = await listenForCallback(state, metadata, options.port ?? 0);
  let timer: NodeJS.Timeout | undefined;
  try {
    const url = new URL(metadata.authorization_endpoint);
    const params: Record<string, string | undefined> = {
      response_type: 'code',
      client_id: settings.clientId,
      redirect_uri: redirectUri,
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
    const timeoutMs = options.timeoutMs ?? BROWSER_LOGIN_TIMEOUT_MS;
    const timeout = new Promise<never>((_r, reject) => {
      timer = setTimeout(() => reject(new OAuthError('timeout', `no sign-in within ${timeoutMs / 1000}s`)), timeoutMs);
    });
    const { code } = await Promise.race([result, timeout]);
    const tokens = await tokenRequest(
      metadata,
      { grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: pkce.verifier, resource: settings.resource },
      { clientId: settings.clientId },
    );
    // OpenID Connect Core §3.1.3.7: the ID token must carry the nonce of this request.
    if (tokens.id_token !== undefined && jwtPayload(tokens.id_token)?.nonce !== nonce) {
      throw new OAuthError('nonce_mismatch', 'the ID token does not carry this sign-in\'s nonce');
    }
    return tokens;
  } finally {
    clearTimeout(timer);
    server.closeAllConnections();
    server.close();
  }
}
