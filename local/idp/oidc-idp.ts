import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Plane } from '../oidc/dev-issuer';

/**
 * A real OpenID provider (`oidc-provider`, certified) for local mode and the tests: authorization
 * code with PKCE for the CLI (a native client, any loopback port per RFC 8252 §7.3), the device
 * grant (RFC 8628), refresh tokens, client credentials for a service, and JWT access tokens for
 * the twokey audience. Sign-in is oidc-provider's development form: any user name, any password,
 * and the groups come from the user list. Never expose it beyond loopback.
 */
export const IDP_CLI_CLIENT_ID = 'twokey-cli';
export const IDP_SERVICE_CLIENT_ID = 'twokey-ci';
/** The control plane's client for reviewer sign-in on the review page (a confidential web client). */
export const IDP_REVIEW_CLIENT_ID = 'twokey-review';
/**
 * The resource indicators (RFC 8707) access tokens are issued for, one per plane, and the audience
 * each carries: a data-plane token (psql password; the default) is never an API credential.
 */
export const IDP_RESOURCES: Readonly<Record<Plane, string>> = { data: 'urn:twokey:data', api: 'urn:twokey:api' };
export const IDP_AUDIENCES: Readonly<Record<Plane, string>> = { data: 'twokey-data', api: 'twokey-api' };
/** Keycloak's shape: roles nested under `realm_access`, so deployments exercise a claim path. */
export const IDP_GROUPS_CLAIM = 'realm_access.roles';
/** Lines of oidc-idp-main's stdio protocol start with this (oidc-provider prints its own notices there too). */
export const IDP_LINE_PREFIX = 'TWOKEY_IDP ';
export const IDP_DEFAULT_ACCESS_TOKEN_TTL_SECONDS = 600;
const IDP_REFRESH_TOKEN_TTL_SECONDS = 8 * 3600;
const IDP_DEVICE_CODE_TTL_SECONDS = 600;

export interface IdpUser {
  readonly groups: readonly string[];
  readonly email?: string;
}

export interface OidcIdpOptions {
  readonly host?: string;
  readonly port?: number;
  readonly users: Readonly<Record<string, IdpUser>>;
  /** The service client's secret (client credentials); its tokens carry `serviceGroups`. */
  readonly serviceClientSecret: string;
  readonly serviceGroups?: readonly string[];
  readonly accessTokenTtlSeconds?: number;
  /** Registers the review client with this secret and redirect URI (the control plane's /approvals/sign-in/callback). */
  readonly reviewClient?: { readonly secret: string; readonly redirectUri: string };
}

export interface OidcIdp {
  readonly issuer: string;
  /** Replaces the signing key: new tokens carry the new `kid`, and the JWKS no longer lists the old key. */
  rotateKey(): string;
  close(): Promise<void>;
}

interface SigningKeys {
  readonly kid: string;
  readonly keys: Record<string, unknown>[];
}

function newSigningKeys(): SigningKeys {
  const kid = randomUUID();
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  return {
    kid,
    keys: [
      { ...rsa, kid: `${kid}-rs`, alg: 'RS256', use: 'sig' },
      { ...ec, kid, alg: 'ES256', use: 'sig' },
    ],
  };
}

type ProviderModule = typeof import('oidc-provider');
type Adapter = import('oidc-provider').Adapter;
type ProviderInstance = InstanceType<ProviderModule['default']>;

function groupsClaims(groups: readonly string[]): Record<string, unknown> {
  return { groups: [...groups], realm_access: { roles: [...groups] } };
}

interface ProviderState {
  readonly adapter: (model: string) => Adapter;
  readonly cookieKeys: string[];
}

function buildProvider({ default: Provider, errors }: ProviderModule, issuer: string, options: OidcIdpOptions, keys: SigningKeys, state: ProviderState): ProviderInstance {
  const account = (sub: string) => {
    const user = options.users[sub];
    return {
      accountId: sub,
      claims: () => ({
        sub,
        name: sub,
        preferred_username: sub,
        email: user?.email ?? `${sub}@example.com`,
        email_verified: true,
        ...groupsClaims(user?.groups ?? []),
      }),
    };
  };
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: IDP_CLI_CLIENT_ID,
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        redirect_uris: ['http://127.0.0.1/callback'],
        grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
        response_types: ['code'],
      },
      {
        client_id: IDP_SERVICE_CLIENT_ID,
        client_secret: options.serviceClientSecret,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
      },
      ...(options.reviewClient
        ? [{ client_id: IDP_REVIEW_CLIENT_ID, client_secret: options.reviewClient.secret, grant_types: ['authorization_code'], response_types: ['code'] as const, redirect_uris: [options.reviewClient.redirectUri] }]
        : []),
    ],
    jwks: { keys: keys.keys as never },
    adapter: state.adapter,
    cookies: { keys: state.cookieKeys },
    findAccount: (_ctx, sub) => account(sub),
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'preferred_username'], groups: ['groups', 'realm_access'] },
    scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
    conformIdTokenClaims: false,
    features: {
      devInteractions: { enabled: true },
      deviceFlow: { enabled: true },
      clientCredentials: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => IDP_RESOURCES.data,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resource) => {
          const plane = (Object.keys(IDP_RESOURCES) as Plane[]).find((p) => IDP_RESOURCES[p] === resource);
          if (!plane) throw new errors.InvalidTarget();
          return {
            scope: 'openid offline_access email profile groups',
            audience: IDP_AUDIENCES[plane],
            accessTokenFormat: 'jwt',
            accessTokenTTL: options.accessTokenTtlSeconds ?? IDP_DEFAULT_ACCESS_TOKEN_TTL_SECONDS,
            jwt: { sign: { alg: 'ES256' } },
          };
        },
      },
    },
    // Access tokens carry identity claims themselves: agents verify them without calling userinfo.
    extraTokenClaims: async (_ctx, token) => {
      const accountId = (token as { accountId?: string }).accountId;
      if (accountId === undefined) return groupsClaims(options.serviceGroups ?? []);
      const claims = account(accountId).claims();
      return { name: claims.name, email: claims.email, email_verified: true, ...groupsClaims(options.users[accountId]?.groups ?? []) };
    },
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    pkce: { required: () => true },
    ttl: {
      RefreshToken: IDP_REFRESH_TOKEN_TTL_SECONDS,
      DeviceCode: IDP_DEVICE_CODE_TTL_SECONDS,
      IdToken: options.accessTokenTtlSeconds ?? IDP_DEFAULT_ACCESS_TOKEN_TTL_SECONDS,
    },
  });
  return provider;
}

/** Starts the provider on loopback. `oidc-provider` is an ES module: it is loaded with a dynamic import. */
export async function startOidcIdp(options: OidcIdpOptions): Promise<OidcIdp> {
  const oidcProvider = await import('oidc-provider');
  const host = options.host ?? '127.0.0.1';
  let handle: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.writeHead(503).end();
  const server = createServer((req, res) => handle(req, res));
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, host, resolve));
  const issuer = `http://${host}:${(server.address() as AddressInfo).port}`;
  // One store of grants, sessions and tokens for every provider built here: after a key rotation
  // the provider still knows the refresh tokens the previous one issued.
  const { createMemoryAdapter } = await import('oidc-provider/lib/adapters/memory_adapter.js');
  const state: ProviderState = { adapter: createMemoryAdapter(), cookieKeys: [randomBytes(32).toString('hex')] };
  const install = (): string => {
    const keys = newSigningKeys();
    const provider = buildProvider(oidcProvider, issuer, options, keys, state);
    handle = provider.callback() as typeof handle;
    return keys.kid;
  };
  install();
  return {
    issuer,
    rotateKey: install,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
