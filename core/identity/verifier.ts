import { errors as joseErrors, importJWK, jwtVerify, type JWK, type JWTPayload, type JWTVerifyGetKey, type KeyLike } from 'jose';
import { err, ok, type Result } from '../result';
import { groupsAt } from './claim-path';
import type { Identity } from './identity';

/** Asymmetric algorithms only: `none` and HMAC (where a public key could be used as the secret) are never accepted. */
export const ALLOWED_ALGORITHMS = ['RS256', 'PS256', 'ES256', 'EdDSA'] as const;
export const CLOCK_SKEW_SECONDS = 30;
/** An unknown `kid` triggers a JWKS refetch at most this often per issuer. */
export const JWKS_REFETCH_COOLDOWN_MS = 10_000;
export const JWKS_MAX_AGE_MS = 10 * 60_000;
export const MAX_TOKEN_BYTES = 16 * 1024;
const MAX_JWKS_KEYS = 100;

export interface IssuerConfig {
  readonly issuer: string;
  /** The one audience this component accepts (the control plane's API, or the data plane). */
  readonly audience: string;
  /**
   * The other plane's audience: a token that also names one of these is refused, so that one token
   * can never serve both as a psql password and as an admin API credential.
   */
  readonly refusedAudiences?: readonly string[];
  /** Claim path holding the caller's groups (`groups`, `roles`, `cognito:groups`, `realm_access.roles`; see claim-path.ts). */
  readonly groupsClaim?: string;
}

export interface VerifierDeps {
  /** Fetches a URL and returns its parsed JSON body; throws on network or HTTP failure. */
  readonly fetchJson: (url: string) => Promise<unknown>;
  readonly nowMs: () => number;
}

export type TokenRejection =
  | 'malformed'
  | 'unknown-issuer'
  | 'bad-signature'
  | 'bad-algorithm'
  | 'expired'
  | 'not-yet-valid'
  | 'bad-claims'
  | 'unknown-key'
  | 'issuer-unreachable';

export class TokenRejectedError extends Error {
  constructor(
    readonly reason: TokenRejection,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`${reason}: ${detail}`, options);
    this.name = 'TokenRejectedError';
  }
}

interface KeyCache {
  keys: Map<string, { jwk: JWK; key: KeyLike | Uint8Array }>;
  fetchedAt: number;
  jwksUri?: string;
}

/**
 * Verifies caller JWTs against configured OIDC issuers: discovery, JWKS with refetch on an unknown
 * `kid` (rate-limited), algorithm allow-list, `iss`, `aud`, `exp`/`nbf` with a small skew.
 */
export class TokenVerifier {
  private readonly caches = new Map<string, KeyCache>();
  /** One JWKS fetch per issuer at a time: a burst of tokens with unknown `kid`s waits for the same one. */
  private readonly refreshing = new Map<string, Promise<KeyCache>>();
  private readonly issuers: Map<string, IssuerConfig>;

  constructor(
    issuers: readonly IssuerConfig[],
    private readonly deps: VerifierDeps,
  ) {
    this.issuers = new Map(issuers.map((i) => [i.issuer, i]));
  }

  async verify(token: string): Promise<Result<Identity, TokenRejectedError>> {
    try {
      return ok(await this.verifyOrThrow(token));
    } catch (e) {
      if (e instanceof TokenRejectedError) return err(e);
      return err(new TokenRejectedError(mapJoseError(e), e instanceof Error ? e.message : 'invalid token', { cause: e }));
    }
  }

  private async verifyOrThrow(token: string): Promise<Identity> {
    if (token.length > MAX_TOKEN_BYTES || !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token)) {
      throw new TokenRejectedError('malformed', 'not a compact JWS');
    }
    const unverifiedIss = readUnverifiedIssuer(token);
    const config = unverifiedIss === undefined ? undefined : this.issuers.get(unverifiedIss);
    if (!config) throw new TokenRejectedError('unknown-issuer', `issuer ${String(unverifiedIss)} is not trusted`);

    const getKey: JWTVerifyGetKey = async (header) => {
      if (!(ALLOWED_ALGORITHMS as readonly string[]).includes(header.alg)) {
        throw new TokenRejectedError('bad-algorithm', `algorithm ${header.alg} is not allowed`);
      }
      const entry = await this.keyFor(config.issuer, header.kid);
      if (entry.jwk.alg !== undefined && entry.jwk.alg !== header.alg) {
        throw new TokenRejectedError('bad-algorithm', `key ${header.kid} is for ${entry.jwk.alg}, token says ${header.alg}`);
      }
      return entry.key;
    };

    const { payload } = await jwtVerify(token, getKey, {
      issuer: config.issuer,
      audience: config.audience,
      algorithms: [...ALLOWED_ALGORITHMS],
      clockTolerance: CLOCK_SKEW_SECONDS,
      currentDate: new Date(this.deps.nowMs()),
      requiredClaims: ['sub', 'exp'],
    });
    const audiences = typeof payload.aud === 'string' ? [payload.aud] : (payload.aud ?? []);
    const other = audiences.find((a) => config.refusedAudiences?.includes(a));
    if (other !== undefined) throw new TokenRejectedError('bad-claims', `token is also for audience ${other}, which this service refuses`);
    return toIdentity(payload, config);
  }

  private async keyFor(issuer: string, kid: string | undefined): Promise<{ jwk: JWK; key: KeyLike | Uint8Array }> {
    if (kid === undefined) throw new TokenRejectedError('unknown-key', 'token has no kid');
    let cache = this.caches.get(issuer);
    const now = this.deps.nowMs();
    const stale = !cache || now - cache.fetchedAt > JWKS_MAX_AGE_MS;
    const unknownKidMayRefetch = cache !== undefined && !cache.keys.has(kid) && now - cache.fetchedAt >= JWKS_REFETCH_COOLDOWN_MS;
    if (stale || unknownKidMayRefetch) cache = await this.refreshOnce(issuer, cache);
    const entry = cache?.keys.get(kid);
    if (!entry) throw new TokenRejectedError('unknown-key', `no key ${kid} in the issuer's JWKS`);
    return entry;
  }

  private refreshOnce(issuer: string, previous: KeyCache | undefined): Promise<KeyCache> {
    let pending = this.refreshing.get(issuer);
    if (!pending) {
      pending = this.refresh(issuer, previous).finally(() => this.refreshing.delete(issuer));
      this.refreshing.set(issuer, pending);
    }
    return pending;
  }

  private async refresh(issuer: string, previous: KeyCache | undefined): Promise<KeyCache> {
    try {
      const jwksUri = previous?.jwksUri ?? (await this.discover(issuer));
      const body = await this.deps.fetchJson(jwksUri);
      const list = (body as { keys?: unknown }).keys;
      if (!Array.isArray(list)) throw new Error('JWKS has no keys array');
      const keys = new Map<string, { jwk: JWK; key: KeyLike | Uint8Array }>();
      for (const raw of list.slice(0, MAX_JWKS_KEYS)) {
        const jwk = raw as JWK;
        if (typeof jwk.kid !== 'string' || jwk.kty === 'oct' || (jwk.use !== undefined && jwk.use !== 'sig')) continue;
        if (jwk.alg !== undefined && !(ALLOWED_ALGORITHMS as readonly string[]).includes(jwk.alg)) continue;
        const alg = jwk.alg ?? defaultAlgFor(jwk);
        if (!alg) continue;
        keys.set(jwk.kid, { jwk, key: await importJWK(jwk, alg) });
      }
      const cache: KeyCache = { keys, fetchedAt: this.deps.nowMs(), jwksUri };
      this.caches.set(issuer, cache);
      return cache;
    } catch (e) {
      if (previous) {
        // Keep serving known keys, but do not hammer an unreachable issuer on every token.
        previous.fetchedAt = this.deps.nowMs();
        return previous;
      }
      throw new TokenRejectedError('issuer-unreachable', `cannot load keys of ${issuer}`, { cause: e });
    }
  }

  private async discover(issuer: string): Promise<string> {
    const doc = (await this.deps.fetchJson(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`)) as {
      issuer?: unknown;
      jwks_uri?: unknown;
    };
    // OpenID Connect Discovery 1.0 §4.3: the document's issuer must equal the issuer we asked.
    if (doc.issuer !== issuer || typeof doc.jwks_uri !== 'string') throw new Error('discovery document does not match issuer');
    return doc.jwks_uri;
  }
}

function defaultAlgFor(jwk: JWK): string | undefined {
  if (jwk.kty === 'RSA') return 'RS256';
  if (jwk.kty === 'EC' && jwk.crv === 'P-256') return 'ES256';
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return 'EdDSA';
  return undefined;
}

function readUnverifiedIssuer(token: string): string | undefined {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { iss?: unknown };
    return typeof payload.iss === 'string' ? payload.iss : undefined;
  } catch {
    throw new TokenRejectedError('malformed', 'payload is not JSON');
  }
}

function toIdentity(payload: JWTPayload, config: IssuerConfig): Identity {
  const groups = groupsAt(payload, config.groupsClaim ?? 'groups');
  const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);
  const subject = str(payload.sub);
  if (!subject) throw new TokenRejectedError('bad-claims', 'no subject');
  return {
    subject,
    name: str(payload.name) ?? str(payload.preferred_username) ?? subject,
    // Only an address the issuer vouches for (OIDC Core 5.1: `email_verified` is a JSON boolean). Entra's
    // optional `email` claim, for one, is user-editable and comes without it.
    email: payload.email_verified === true ? str(payload.email) : undefined,
    groups,
    issuer: config.issuer,
  };
}

function mapJoseError(e: unknown): TokenRejection {
  if (e instanceof joseErrors.JWTExpired) return 'expired';
  if (e instanceof joseErrors.JWTClaimValidationFailed) return e.claim === 'nbf' ? 'not-yet-valid' : 'bad-claims';
  if (e instanceof joseErrors.JWSSignatureVerificationFailed) return 'bad-signature';
  if (e instanceof joseErrors.JOSEAlgNotAllowed || e instanceof joseErrors.JOSENotSupported) return 'bad-algorithm';
  return 'malformed';
}
