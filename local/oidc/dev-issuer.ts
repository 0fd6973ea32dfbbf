import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK } from 'jose';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const DEV_AUDIENCE = 'twokey';
export const DEV_GROUPS_CLAIM = 'groups';
export const DEV_TOKEN_TTL_SECONDS = 3600;
const SIGNING_ALG = 'ES256';
const KEY_FILE = 'oidc-signing-key.json';

export interface DevSigningKey {
  readonly kid: string;
  readonly privateJwk: JWK;
  readonly publicJwk: JWK;
}

async function newKey(): Promise<DevSigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(SIGNING_ALG, { extractable: true });
  const kid = randomUUID();
  return {
    kid,
    privateJwk: { ...(await exportJWK(privateKey)), kid, alg: SIGNING_ALG },
    publicJwk: { ...(await exportJWK(publicKey)), kid, alg: SIGNING_ALG, use: 'sig' },
  };
}

/** The dev issuer's key, kept in the data dir (0600) so tokens survive a restart; in memory when there is no data dir. */
export async function loadOrCreateSigningKey(dataDir: string | undefined): Promise<DevSigningKey> {
  if (!dataDir) return newKey();
  const file = join(dataDir, KEY_FILE);
  if (existsSync(file)) return JSON.parse(await readFile(file, 'utf8')) as DevSigningKey;
  const key = await newKey();
  await writeFile(file, JSON.stringify(key), { mode: 0o600 });
  return key;
}

export async function readSigningKey(dataDir: string): Promise<DevSigningKey> {
  return JSON.parse(await readFile(join(dataDir, KEY_FILE), 'utf8')) as DevSigningKey;
}

export interface TokenRequest {
  readonly user: string;
  readonly groups: readonly string[];
  readonly email?: string;
  readonly ttlSeconds?: number;
}

export async function mintDevToken(issuer: string, key: DevSigningKey, request: TokenRequest): Promise<string> {
  const privateKey = await importJWK(key.privateJwk, SIGNING_ALG);
  return new SignJWT({
    name: request.user,
    preferred_username: request.user,
    email: request.email ?? `${request.user}@example.com`,
    email_verified: true,
    [DEV_GROUPS_CLAIM]: [...request.groups],
  })
    .setProtectedHeader({ alg: SIGNING_ALG, kid: key.kid, typ: 'JWT' })
    .setIssuer(issuer)
    .setAudience(DEV_AUDIENCE)
    .setSubject(request.user)
    .setIssuedAt()
    .setExpirationTime(`${request.ttlSeconds ?? DEV_TOKEN_TTL_SECONDS}s`)
    .setJti(randomUUID())
    .sign(privateKey);
}

/** Discovery document and JWKS (OpenID Connect Discovery 1.0), served under the issuer URL. */
export function issuerDocuments(issuer: string, key: DevSigningKey): Record<string, unknown> {
  return {
    '/.well-known/openid-configuration': {
      issuer,
      jwks_uri: `${issuer}/jwks.json`,
      id_token_signing_alg_values_supported: [SIGNING_ALG],
      subject_types_supported: ['public'],
      response_types_supported: ['id_token'],
    },
    '/jwks.json': { keys: [key.publicJwk] },
  };
}
