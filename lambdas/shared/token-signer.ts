import { importJWK, SignJWT, type JWK } from 'jose';
import { randomUUID } from 'node:crypto';
import type { TokenSigner } from '../domain/deps';

const SIGNING_ALG = 'ES256';

/**
 * Signs the control plane's own short-lived tokens with a private JWK (local mode's key, which the
 * local issuer's JWKS publishes). On AWS the same port is to be served by a KMS key.
 */
export function jwkTokenSigner(issuer: string, audience: string, privateJwk: JWK): TokenSigner {
  const key = importJWK(privateJwk, SIGNING_ALG);
  return {
    issuer,
    async sign(identity, ttlSeconds) {
      return new SignJWT({ name: identity.name, email: identity.email, email_verified: identity.email !== undefined, groups: [...identity.groups] })
        .setProtectedHeader({ alg: SIGNING_ALG, kid: privateJwk.kid, typ: 'JWT' })
        .setIssuer(issuer)
        .setAudience(audience)
        .setSubject(identity.subject)
        .setIssuedAt()
        .setExpirationTime(`${ttlSeconds}s`)
        .setJti(randomUUID())
        .sign(await key);
    },
  };
}
