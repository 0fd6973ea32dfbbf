import { browserLogin } from '../../../cli/auth/browser-login';
import { toCachedLogin } from '../../../cli/auth/login-session';
import { OAuthError, pkceChallenge, type ProviderMetadata } from '../../../cli/auth/oauth-client';
import type { LoginSettings } from '../../../cli/auth/token-cache';

const ISSUER = 'https://idp.example.com';
const settings: LoginSettings = { issuer: ISSUER, clientId: 'twokey-cli', scope: 'openid offline_access', use: 'access' };
// The token endpoint is never reached in these tests: a port nothing listens on.
const metadata: ProviderMetadata = { issuer: ISSUER, authorization_endpoint: `${ISSUER}/authorize`, token_endpoint: 'http://127.0.0.1:9/token' };

function jwt(payload: Record<string, unknown>): string {
  return `e30.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.sig`;
}

describe('PKCE', () => {
  it('derives the S256 challenge of RFC 7636 appendix B', () => {
    expect(pkceChallenge('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk')).toBe('E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM');
  });
});

describe('the loopback redirect', () => {
  /** Plays the browser: calls the redirect URI with the parameters `respond` builds from the authorization request. */
  function loginAnswering(respond: (request: URL) => Record<string, string>, seen: number[] = []) {
    return browserLogin({
      settings,
      metadata,
      timeoutMs: 5_000,
      open: (url) => {
        const request = new URL(url);
        const callback = new URL(request.searchParams.get('redirect_uri') as string);
        for (const [k, v] of Object.entries(respond(request))) callback.searchParams.set(k, v);
        void fetch(callback).then((r) => seen.push(r.status));
      },
    });
  }

  it('ignores a response that does not carry the state it sent, and gives up when the real one never comes', async () => {
    const seen: number[] = [];
    const result = loginAnswering(() => ({ code: 'stolen', state: 'guessed', iss: ISSUER }), seen);
    await expect(result).rejects.toMatchObject({ code: 'timeout' });
    expect(seen).toEqual([400]);
  });

  it('refuses a response from another issuer (RFC 9207 mix-up defence)', async () => {
    const result = loginAnswering((req) => ({ code: 'c', state: req.searchParams.get('state') as string, iss: 'https://evil.example.com' }));
    await expect(result).rejects.toThrow(OAuthError);
    await expect(result).rejects.toMatchObject({ code: 'issuer_mismatch' });
  });

  it('reports the error the provider sent back', async () => {
    const result = loginAnswering((req) => ({ error: 'access_denied', error_description: 'user said no', state: req.searchParams.get('state') as string }));
    await expect(result).rejects.toMatchObject({ code: 'access_denied', message: 'sign-in refused (access_denied: user said no)' });
  });
});

describe('the cached login', () => {
  it('keeps the refresh and ID tokens when a refresh returns none, and takes the expiry from the token it hands out', () => {
    const previous = toCachedLogin(settings, { access_token: jwt({ exp: 100 }), token_type: 'Bearer', refresh_token: 'r1', id_token: jwt({ exp: 90 }) }, 0);
    const refreshed = toCachedLogin(settings, { access_token: jwt({ exp: 200 }), token_type: 'Bearer' }, 0, previous);
    expect(refreshed).toMatchObject({ refreshToken: 'r1', idToken: previous.idToken, expiresAt: 200 });
    expect(toCachedLogin({ ...settings, use: 'id' }, { access_token: 'opaque', token_type: 'Bearer', id_token: jwt({ exp: 90 }), expires_in: 3600 }, 0).expiresAt).toBe(90);
  });

  it('refuses a login meant for ID tokens when the provider returned none', () => {
    expect(() => toCachedLogin({ ...settings, use: 'id' }, { access_token: 'opaque', token_type: 'Bearer' }, 0)).toThrow(/no ID token/);
  });
});
