import { GetPublicKeyCommand, SignCommand, type KMSClient } from '@aws-sdk/client-kms';
import { calculateJwkThumbprint, type JWK } from 'jose';
import { createHash, createPrivateKey, createPublicKey, randomUUID, sign, type JsonWebKey, type KeyObject } from 'node:crypto';
import type { TokenSigner } from '../domain/deps';

/** ES256 (ECDSA P-256 over SHA-256): KMS's ECC_NIST_P256 key spec with ECDSA_SHA_256, and what the verifier allows. */
const SIGNING_ALG = 'ES256';
const KMS_KEY_SPEC = 'ECC_NIST_P256';
const KMS_SIGNING_ALGORITHM = 'ECDSA_SHA_256';
/** One coordinate of a P-256 point, and so each of r and s in a JWS signature (RFC 7518 §3.4). */
const P256_COORDINATE_BYTES = 32;

export class TokenSignerError extends Error {
  override name = 'TokenSignerError';
}

/** The public half of the signing key as the JWKS publishes it: `kid` is its RFC 7638 thumbprint. */
async function publishedJwk(publicKey: KeyObject): Promise<JWK> {
  const jwk = publicKey.export({ format: 'jwk' }) as JWK;
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256') throw new TokenSignerError('the token signing key is not an EC P-256 key');
  return { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y, kid: await calculateJwkThumbprint(jwk), alg: SIGNING_ALG, use: 'sig' };
}

/**
 * The control plane's own tokens (a SAML sign-in exchanged for a JWT), for one audience (the data
 * plane's). One JWT builder; the key behind `signInput` (ES256 over the JWS signing input, r||s) is
 * KMS on AWS or a local key in local mode.
 */
function jwtSigner(issuer: string, audience: string, publicJwk: () => Promise<JWK>, signInput: (input: Buffer) => Promise<Buffer>): TokenSigner {
  return {
    issuer,
    publicJwks: async () => [await publicJwk()],
    async sign(identity, ttlSeconds) {
      const { kid } = await publicJwk();
      const now = Math.floor(Date.now() / 1000);
      const header = { alg: SIGNING_ALG, kid, typ: 'JWT' };
      const claims = {
        iss: issuer,
        aud: audience,
        sub: identity.subject,
        iat: now,
        exp: now + ttlSeconds,
        jti: randomUUID(),
        name: identity.name,
        email: identity.email,
        email_verified: identity.email !== undefined,
        groups: [...identity.groups],
      };
      const input = `${base64url(header)}.${base64url(claims)}`;
      const signature = await signInput(Buffer.from(input));
      return `${input}.${signature.toString('base64url')}`;
    },
  };
}

const base64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A private JWK's key (local mode: a key file in the data dir). */
export function jwkTokenSigner(issuer: string, audience: string, privateJwk: JsonWebKey): TokenSigner {
  const privateKey = createPrivateKey({ key: privateJwk, format: 'jwk' });
  const jwk = publishedJwk(createPublicKey(privateKey));
  return jwtSigner(issuer, audience, () => jwk, async (input) => sign('sha256', input, { key: privateKey, dsaEncoding: 'ieee-p1363' }));
}

/**
 * An asymmetric KMS key (ECC_NIST_P256, SIGN_VERIFY): the private key never leaves KMS; Sign gets the
 * SHA-256 digest of the JWS input, GetPublicKey gives the JWKS (read once per container). A key of
 * another spec or usage is refused rather than used.
 */
export function kmsTokenSigner(kms: KMSClient, keyId: string, issuer: string, audience: string): TokenSigner {
  let jwk: Promise<JWK> | undefined;
  const publicJwk = (): Promise<JWK> => {
    jwk ??= (async () => {
      const out = await kms.send(new GetPublicKeyCommand({ KeyId: keyId }));
      if (out.KeySpec !== KMS_KEY_SPEC || out.KeyUsage !== 'SIGN_VERIFY' || !out.SigningAlgorithms?.includes(KMS_SIGNING_ALGORITHM) || !out.PublicKey) {
        throw new TokenSignerError(`the token signing key must be ${KMS_KEY_SPEC} for SIGN_VERIFY with ${KMS_SIGNING_ALGORITHM}`);
      }
      return publishedJwk(createPublicKey({ key: Buffer.from(out.PublicKey), format: 'der', type: 'spki' }));
    })().catch((e: unknown) => {
      jwk = undefined;
      throw e;
    });
    return jwk;
  };
  return jwtSigner(issuer, audience, publicJwk, async (input) => {
    const digest = createHash('sha256').update(input).digest();
    const out = await kms.send(new SignCommand({ KeyId: keyId, Message: digest, MessageType: 'DIGEST', SigningAlgorithm: KMS_SIGNING_ALGORITHM }));
    if (!out.Signature) throw new TokenSignerError('KMS returned no signature');
    return joseSignatureOf(Buffer.from(out.Signature));
  });
}

/**
 * KMS returns an ECDSA signature DER-encoded (SEQUENCE of INTEGER r, INTEGER s, RFC 3279); a JWS
 * carries r and s as two fixed-size big-endian numbers (RFC 7518 §3.4).
 */
export function joseSignatureOf(der: Buffer): Buffer {
  let at = 0;
  const byte = (): number => {
    const b = der[at++];
    if (b === undefined) throw new TokenSignerError('truncated ECDSA signature');
    return b;
  };
  const length = (): number => {
    const first = byte();
    if (first < 0x80) return first;
    if (first !== 0x81) throw new TokenSignerError('ECDSA signature too long');
    return byte();
  };
  if (byte() !== 0x30 || length() !== der.length - at) throw new TokenSignerError('not a DER ECDSA signature');
  const integer = (): Buffer => {
    if (byte() !== 0x02) throw new TokenSignerError('not a DER ECDSA signature');
    const n = length();
    const value = der.subarray(at, at + n);
    at += n;
    const first = value.findIndex((b) => b !== 0);
    const digits = value.subarray(first === -1 ? value.length : first);
    if (value.length !== n || digits.length > P256_COORDINATE_BYTES) throw new TokenSignerError('ECDSA signature value out of range');
    return Buffer.concat([Buffer.alloc(P256_COORDINATE_BYTES - digits.length), digits]);
  };
  const r = integer();
  const s = integer();
  if (at !== der.length) throw new TokenSignerError('trailing bytes after the ECDSA signature');
  return Buffer.concat([r, s]);
}
