import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK } from 'jose';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDocument } from 'yaml';

/**
 * Each plane accepts only its own audience: a token used as a psql password (and so kept in shell
 * history, .pgpass, a driver's config) cannot call the admin and auditor HTTP API, and an API token is
 * no psql password. Each plane also refuses a token that names the other's audience.
 */
export const DEV_AUDIENCES = { data: 'twokey-data', api: 'twokey-api' } as const;
export type Plane = keyof typeof DEV_AUDIENCES;
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

/** The dev issuer's key (or another local key, by file name), kept in the data dir (0600) so tokens survive a restart; in memory when there is no data dir. */
export async function loadOrCreateSigningKey(dataDir: string | undefined, fileName = KEY_FILE): Promise<DevSigningKey> {
  if (!dataDir) return newKey();
  const file = join(dataDir, fileName);
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
  /** The `name` claim (the user's own, editable at most IdPs); defaults to the user. */
  readonly name?: string;
  /** Which plane the token is for (its `aud`). */
  readonly audience: Plane;
  readonly groups: readonly string[];
  /** Defaults to USER@example.com; null leaves the claim out (as Okta and Entra access tokens do). */
  readonly email?: string | null;
  /** `email_verified`, true unless said otherwise. */
  readonly emailVerified?: boolean;
  readonly ttlSeconds?: number;
}

export async function mintDevToken(issuer: string, key: DevSigningKey, request: TokenRequest): Promise<string> {
  const privateKey = await importJWK(key.privateJwk, SIGNING_ALG);
  return new SignJWT({
    name: request.name ?? request.user,
    preferred_username: request.user,
    ...(request.email === null ? {} : { email: request.email ?? `${request.user}@example.com`, email_verified: request.emailVerified ?? true }),
    [DEV_GROUPS_CLAIM]: [...request.groups],
  })
    .setProtectedHeader({ alg: SIGNING_ALG, kid: key.kid, typ: 'JWT' })
    .setIssuer(issuer)
    .setAudience(DEV_AUDIENCES[request.audience])
    .setSubject(request.user)
    .setIssuedAt()
    .setExpirationTime(`${request.ttlSeconds ?? DEV_TOKEN_TTL_SECONDS}s`)
    .setJti(randomUUID())
    .sign(privateKey);
}

/** The verifier settings of one plane for an issuer with an audience per plane: its own audience, the other refused. */
export function planeIssuerConfig(
  issuer: string,
  audiences: Readonly<Record<Plane, string>>,
  plane: Plane,
  groupsClaim: string,
): { issuer: string; audience: string; refusedAudiences: string[]; groupsClaim: string } {
  const other: Plane = plane === 'data' ? 'api' : 'data';
  return { issuer, audience: audiences[plane], refusedAudiences: [audiences[other]], groupsClaim };
}

/** The verifier settings of one plane for the dev issuer. */
export function devIssuerConfig(issuer: string, plane: Plane): ReturnType<typeof planeIssuerConfig> {
  return planeIssuerConfig(issuer, DEV_AUDIENCES, plane, DEV_GROUPS_CLAIM);
}

/**
 * A policy for the local stack: when it names no top-level `issuer`, `issuer` (the dev issuer, or the
 * local OpenID provider with `--idp oidc`) becomes the issuer of its users and reviewers (its URL
 * depends on the port, so the demo policy cannot carry it). `reviewerSignIn` groups, if given and the
 * policy names none, vote only once signed in with that provider.
 */
export function withDevIssuer(source: string, issuer: string, reviewerSignIn: readonly string[] = []): string {
  const doc = parseDocument(source);
  if (doc.errors.length > 0 || doc.has('issuer')) return source;
  doc.set('issuer', issuer);
  if (reviewerSignIn.length > 0 && !doc.has('reviewerSignIn')) doc.set('reviewerSignIn', [...reviewerSignIn]);
  return doc.toString();
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
