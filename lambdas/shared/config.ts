import { z } from 'zod';
import type { IssuerConfig } from '../../core/identity/verifier';
import { reviewerOidcSchema, type ReviewerOidcConfig } from '../domain/reviewer-sign-in';
import { samlIdpSchema, type SamlIdpConfig } from '../domain/saml';
import { TABLES } from '../store/table-definitions';
import { SDK_REQUEST_TIMEOUT_MS } from './sdk-limits';

/** The key of the control plane's own tokens: a KMS key on AWS, a private JWK in local mode. */
const tokenSignerSchema = z.union([
  z.strictObject({ audience: z.string().min(1), kmsKeyId: z.string().min(1) }),
  z.strictObject({ audience: z.string().min(1), privateJwk: z.record(z.string(), z.unknown()) }),
]);
export type TokenSignerConfig = z.infer<typeof tokenSignerSchema>;

/** The control plane's own issuer: its discovery document and JWKS are routes of the HTTP API (lambdas/routes.ts). */
export const TOKEN_ISSUER_PATH = '/tokens';
export const controlPlaneIssuer = (publicUrl: string): string => `${publicUrl}${TOKEN_ISSUER_PATH}`;

const issuersSchema = z
  .array(
    z.strictObject({
      issuer: z.string().url(),
      /** The HTTP API's own audience; data-plane tokens carry another. */
      audience: z.string().min(1),
      /** The data plane's audience: a token naming it is refused here. */
      refusedAudiences: z.array(z.string().min(1)).optional(),
      groupsClaim: z.string().optional(),
    }),
  )
  .min(1);

export interface ControlPlaneConfig {
  readonly tables: { agents: string; connections: string; policies: string; approvals: string; approvalInbox: string; sessions: string; recordingChunks: string; auditEvents: string; sshKeys: string };
  readonly recordingsBucket: string;
  readonly s3ForcePathStyle: boolean;
  readonly stateMachineArn: string | undefined;
  readonly linkKeySecretId: string | undefined;
  readonly senderEmail: string;
  readonly publicUrl: string;
  readonly issuers: readonly IssuerConfig[];
  readonly adminGroup: string;
  readonly auditorGroup: string;
  readonly wsManagementEndpoint: string | undefined;
  /** The SAML identity provider (SAML_IDP, JSON), if the control plane is a SAML service provider. */
  readonly samlIdp: SamlIdpConfig | undefined;
  /** The key of the control plane's own tokens, which it issues as controlPlaneIssuer(publicUrl) (TOKEN_SIGNER, JSON: audience and kmsKeyId or privateJwk). */
  readonly tokenSigner: TokenSignerConfig | undefined;
  /** The OpenID provider reviewers sign in with (REVIEWER_OIDC, JSON: issuer, clientId). */
  readonly reviewerOidc: ReviewerOidcConfig | undefined;
  /** Its client secret's Secrets Manager id (REVIEWER_OIDC_CLIENT_SECRET_ID), so that it is in no variable in clear. */
  readonly reviewerClientSecretId: string | undefined;
  /** Slack approvals: both secrets' ids, or neither (then Slack is off); the API URL only for a stand-in. */
  readonly slack: { readonly botTokenSecretId: string; readonly signingSecretId: string; readonly apiUrl: string | undefined } | undefined;
  /** The WebSocket URL agents connect to (the stack's TunnelUrl), for a new agent's configuration. */
  readonly tunnelUrl: string | undefined;
  /** Each AWS SDK request's time limit: SDK_REQUEST_TIMEOUT_MS in Lambda; local mode's stand-ins on a busy machine get longer. */
  readonly sdkRequestTimeoutMs: number;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function timeoutMs(value: string | undefined): number {
  if (value === undefined) return SDK_REQUEST_TIMEOUT_MS;
  if (!/^\d{3,6}$/.test(value)) throw new ConfigError('SDK_REQUEST_TIMEOUT_MS must be a whole number of milliseconds');
  return Number(value);
}

/** Reads the handlers' configuration from the environment the stack (or local mode) sets. Fails loudly at cold start. */
export function readConfig(env: NodeJS.ProcessEnv = process.env): ControlPlaneConfig {
  const need = (name: string): string => {
    const value = env[name];
    if (!value) throw new ConfigError(`environment variable ${name} is not set`);
    return value;
  };
  const issuers = issuersSchema.safeParse(JSON.parse(need('OIDC_ISSUERS')));
  if (!issuers.success) throw new ConfigError('OIDC_ISSUERS is not a list of {issuer, audience, refusedAudiences?, groupsClaim?}');
  // SAML's entity id and ACS, the reviewer sign-in's redirect and the token issuer are URLs under PUBLIC_URL.
  const publicUrl = (env.PUBLIC_URL ?? '').replace(/\/$/, '');
  for (const name of ['SAML_IDP', 'REVIEWER_OIDC', 'TOKEN_SIGNER']) if (env[name] && !publicUrl) throw new ConfigError(`${name} needs PUBLIC_URL`);
  return {
    tables: {
      agents: need(TABLES.agents.envVar),
      connections: need(TABLES.connections.envVar),
      policies: need(TABLES.policies.envVar),
      approvals: need(TABLES.approvals.envVar),
      approvalInbox: need(TABLES.approvalInbox.envVar),
      sessions: need(TABLES.sessions.envVar),
      recordingChunks: need(TABLES.recordingChunks.envVar),
      auditEvents: need(TABLES.auditEvents.envVar),
      sshKeys: need(TABLES.sshKeys.envVar),
    },
    recordingsBucket: need('RECORDINGS_BUCKET'),
    s3ForcePathStyle: env.S3_FORCE_PATH_STYLE === 'true',
    stateMachineArn: env.APPROVAL_STATE_MACHINE_ARN,
    linkKeySecretId: env.LINK_KEY_SECRET_ID,
    senderEmail: env.SENDER_EMAIL ?? 'twokey@example.com',
    publicUrl,
    issuers: issuers.data,
    adminGroup: env.ADMIN_GROUP ?? 'admin',
    auditorGroup: env.AUDITOR_GROUP ?? 'auditor',
    wsManagementEndpoint: env.WS_MANAGEMENT_ENDPOINT,
    slack: readSlackConfig(env),
    samlIdp: readJsonEnv(env, 'SAML_IDP', samlIdpSchema),
    reviewerOidc: readJsonEnv(env, 'REVIEWER_OIDC', reviewerOidcSchema),
    reviewerClientSecretId: env.REVIEWER_OIDC_CLIENT_SECRET_ID,
    tokenSigner: readJsonEnv(env, 'TOKEN_SIGNER', tokenSignerSchema),
    tunnelUrl: env.TUNNEL_URL,
    sdkRequestTimeoutMs: timeoutMs(env.SDK_REQUEST_TIMEOUT_MS),
  };
}

function readSlackConfig(env: NodeJS.ProcessEnv): ControlPlaneConfig['slack'] {
  const botTokenSecretId = env.SLACK_BOT_TOKEN_SECRET_ID;
  const signingSecretId = env.SLACK_SIGNING_SECRET_ID;
  if (!botTokenSecretId && !signingSecretId) return undefined;
  if (!botTokenSecretId || !signingSecretId) throw new ConfigError('SLACK_BOT_TOKEN_SECRET_ID and SLACK_SIGNING_SECRET_ID go together');
  return { botTokenSecretId, signingSecretId, apiUrl: env.SLACK_API_URL };
}

function readJsonEnv<T>(env: NodeJS.ProcessEnv, name: string, schema: z.ZodType<T>): T | undefined {
  const value = env[name];
  if (!value) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new ConfigError(`${name} is not JSON`);
  }
  const result = schema.safeParse(parsed);
  if (!result.success) throw new ConfigError(`${name} is invalid: ${result.error.issues.map((i) => `${i.path.join('.')} ${i.message}`).join('; ')}`);
  return result.data;
}

/**
 * The issuers as an agent is to trust them: the same identity providers, with the data plane's
 * audience as its own and the API's refused (the mirror of the API's settings). An issuer whose
 * data-plane audience the control plane does not know is left out: the admin fills it in.
 */
export function agentIssuers(config: Pick<ControlPlaneConfig, 'issuers' | 'tokenSigner' | 'publicUrl'>): { issuer: string; audience: string; refusedAudiences: string[]; groupsClaim?: string }[] {
  const providers = config.issuers.flatMap((i) => {
    const dataPlane = i.refusedAudiences?.[0];
    return dataPlane ? [{ issuer: i.issuer, audience: dataPlane, refusedAudiences: [i.audience], ...(i.groupsClaim ? { groupsClaim: i.groupsClaim } : {}) }] : [];
  });
  // The control plane's own tokens (SAML sign-ins) are trusted like any issuer's.
  const own = config.tokenSigner && { issuer: controlPlaneIssuer(config.publicUrl), audience: config.tokenSigner.audience, refusedAudiences: [...new Set(config.issuers.map((i) => i.audience))], groupsClaim: 'groups' };
  return own ? [...providers, own] : providers;
}
