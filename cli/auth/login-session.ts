import { discover, jwtPayload, OAuthError, tokenRequest, type TokenResponse } from './oauth-client';
import { withLoginLock } from './login-lock';
import { readLogin, writeLogin, type CachedLogin, type LoginSettings } from './token-cache';

/** A token this close to its expiry is refreshed first: psql or kubectl may take a moment to use it. */
export const REFRESH_MARGIN_SECONDS = 60;
/** When neither the JWT nor the response says how long a token lives. */
const ASSUMED_TOKEN_LIFETIME_SECONDS = 300;

export class NotLoggedInError extends Error {
  override name = 'NotLoggedInError';
}

/** The token a login hands out: the access token, or the ID token when the deployment's audience is the client id. */
export function chosenToken(login: Pick<CachedLogin, 'use' | 'accessToken' | 'idToken'>): string | undefined {
  return login.use === 'id' ? login.idToken : login.accessToken;
}

/** Folds a token response into the cache entry; a refresh that returns no new refresh or ID token keeps the old ones (RFC 6749 §6). */
export function toCachedLogin(settings: LoginSettings, tokens: TokenResponse, nowMs: number, previous?: CachedLogin): CachedLogin {
  const login: CachedLogin = {
    version: 1,
    ...settings,
    accessToken: tokens.access_token,
    idToken: tokens.id_token ?? previous?.idToken,
    refreshToken: tokens.refresh_token ?? previous?.refreshToken,
    expiresAt: 0,
  };
  const token = chosenToken(login);
  if (token === undefined) throw new OAuthError('invalid_response', 'the provider returned no ID token (is the openid scope requested?)');
  const exp = jwtPayload(token)?.exp;
  const fromResponse = settings.use === 'access' && typeof tokens.expires_in === 'number' ? tokens.expires_in : ASSUMED_TOKEN_LIFETIME_SECONDS;
  return { ...login, expiresAt: typeof exp === 'number' ? exp : Math.floor(nowMs / 1000) + fromResponse };
}

const isFresh = (login: CachedLogin, nowMs: number): boolean => {
  const token = chosenToken(login);
  return token !== undefined && login.expiresAt - REFRESH_MARGIN_SECONDS > nowMs / 1000;
};

/**
 * A valid token from the cached login, refreshed with the refresh token when it is about to expire
 * (the rotated refresh token replaces the old one in the cache). One process refreshes at a time:
 * whoever waited for the lock reads the cache again and uses what the other one got.
 */
export async function freshToken(dir: string, nowMs: () => number = Date.now): Promise<string> {
  const cached = await readLogin(dir);
  if (!cached) throw new NotLoggedInError('not logged in: run twokey login');
  if (isFresh(cached, nowMs())) return chosenToken(cached) as string;
  return withLoginLock(dir, async () => {
    const login = await readLogin(dir);
    if (!login) throw new NotLoggedInError('not logged in: run twokey login');
    if (isFresh(login, nowMs())) return chosenToken(login) as string;
    if (login.refreshToken === undefined) throw new NotLoggedInError('the login has expired and has no refresh token: run twokey login');
    const metadata = await discover(login.issuer);
    let tokens: TokenResponse;
    try {
      // No `scope`: RFC 6749 §6 keeps the granted scope, and providers refuse any they did not grant.
      tokens = await tokenRequest(
        metadata,
        { grant_type: 'refresh_token', refresh_token: login.refreshToken, resource: login.resource },
        { clientId: login.clientId },
      );
    } catch (e) {
      if (e instanceof OAuthError && e.code === 'invalid_grant') throw new NotLoggedInError('the login has expired or was revoked: run twokey login', { cause: e });
      throw e;
    }
    const refreshed = toCachedLogin(login, tokens, nowMs(), login);
    await writeLogin(dir, refreshed);
    return chosenToken(refreshed) as string;
  });
}

export interface ServiceCredentials {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly scope?: string;
  readonly resource?: string;
}

/** OAuth client credentials (RFC 6749 §4.4) for CI jobs and AI agents: nothing cached, the secret comes from the environment each time. */
export async function serviceToken(credentials: ServiceCredentials): Promise<string> {
  const metadata = await discover(credentials.issuer);
  const tokens = await tokenRequest(
    metadata,
    { grant_type: 'client_credentials', scope: credentials.scope, resource: credentials.resource },
    { clientId: credentials.clientId, clientSecret: credentials.clientSecret },
  );
  return tokens.access_token;
}
