import { awaitCallback, BROWSER_LOGIN_TIMEOUT_MS, listenForCallback } from './browser-login';
import { OAuthError, randomState } from './oauth-client';

export interface SamlLoginOptions {
  readonly controlPlaneUrl: string;
  readonly open: (url: string) => void;
  readonly port?: number;
  readonly timeoutMs?: number;
}

/**
 * Sign-in through the organisation's SAML IdP: the browser goes to the control plane's /saml/login,
 * the IdP posts its assertion to the control plane, which sends its own short-lived token to this
 * loopback listener (the only RelayState it accepts). No refresh token: sign in again when it expires.
 */
export async function samlLogin(options: SamlLoginOptions): Promise<string> {
  const state = randomState();
  const callback = await listenForCallback(state, options.port ?? 0);
  try {
    const relayState = `${callback.redirectUri}?state=${state}`;
    options.open(`${options.controlPlaneUrl.replace(/\/$/, '')}/saml/login?RelayState=${encodeURIComponent(relayState)}`);
    const token = (await awaitCallback(callback, options.timeoutMs ?? BROWSER_LOGIN_TIMEOUT_MS)).get('token');
    if (!token) throw new OAuthError('invalid_response', 'the control plane sent no token');
    return token;
  } finally {
    callback.close();
  }
}
