import {
  DEVICE_DEFAULT_INTERVAL_SECONDS,
  DEVICE_GRANT_TYPE,
  DEVICE_SLOW_DOWN_SECONDS,
  OAuthError,
  postForm,
  tokenRequest,
  type ProviderMetadata,
  type TokenResponse,
} from './oauth-client';
import type { LoginSettings } from './token-cache';

/** Never wait longer than this, whatever `expires_in` the provider sent. */
export const MAX_DEVICE_LOGIN_SECONDS = 15 * 60;

export interface DeviceCodePrompt {
  readonly userCode: string;
  readonly verificationUri: string;
  readonly verificationUriComplete: string | undefined;
  readonly expiresInSeconds: number;
}

export interface DeviceLoginOptions {
  readonly settings: LoginSettings;
  readonly metadata: ProviderMetadata;
  /** Tells the user where to go and which code to enter. */
  readonly prompt: (prompt: DeviceCodePrompt) => void;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly nowMs?: () => number;
}

const defaultSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The device authorization grant (RFC 8628): for a terminal without a browser. */
export async function deviceLogin(options: DeviceLoginOptions): Promise<TokenResponse> {
  const { settings, metadata } = options;
  const sleep = options.sleep ?? defaultSleep;
  const now = options.nowMs ?? Date.now;
  if (!metadata.device_authorization_endpoint) throw new OAuthError('unsupported', `issuer ${metadata.issuer} does not offer the device grant`);
  const client = { clientId: settings.clientId };
  const auth = await postForm(
    metadata.device_authorization_endpoint,
    { scope: settings.scope, resource: settings.resource, ...settings.extraParams },
    client,
    'device authorization',
  );
  const { device_code: deviceCode, user_code: userCode, verification_uri: verificationUri } = auth;
  if (typeof deviceCode !== 'string' || typeof userCode !== 'string' || typeof verificationUri !== 'string') {
    throw new OAuthError('invalid_response', 'device authorization response lacks device_code, user_code or verification_uri');
  }
  const expiresIn = Math.min(typeof auth.expires_in === 'number' ? auth.expires_in : MAX_DEVICE_LOGIN_SECONDS, MAX_DEVICE_LOGIN_SECONDS);
  options.prompt({
    userCode,
    verificationUri,
    verificationUriComplete: typeof auth.verification_uri_complete === 'string' ? auth.verification_uri_complete : undefined,
    expiresInSeconds: expiresIn,
  });
  let intervalSeconds = typeof auth.interval === 'number' && auth.interval > 0 ? auth.interval : DEVICE_DEFAULT_INTERVAL_SECONDS;
  const deadline = now() + expiresIn * 1000;
  for (;;) {
    await sleep(intervalSeconds * 1000);
    if (now() > deadline) throw new OAuthError('expired_token', 'the device code expired before sign-in finished');
    try {
      return await tokenRequest(metadata, { grant_type: DEVICE_GRANT_TYPE, device_code: deviceCode, resource: settings.resource }, client);
    } catch (e) {
      if (!(e instanceof OAuthError)) throw e;
      if (e.code === 'authorization_pending') continue;
      if (e.code === 'slow_down') {
        intervalSeconds += DEVICE_SLOW_DOWN_SECONDS;
        continue;
      }
      throw e;
    }
  }
}
