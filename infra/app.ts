import { App, Validations } from 'aws-cdk-lib';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ControlPlaneStack, type ControlPlaneProps } from './control-plane-stack';
import { applyNagSuppressions } from './nag-suppressions';
import { z } from 'zod';
import { samlIdpSchema } from '../lambdas/domain/saml';

/**
 * The reviewer sign-in client as a deployment names it: no `clientSecret` here (it would sit in the
 * template and in a variable in clear); a confidential client's secret is a Secrets Manager secret
 * (`reviewerOidcClientSecret=true`).
 */
const reviewerOidcContextSchema = z.strictObject({ issuer: z.string().url().startsWith('https://'), clientId: z.string().min(1) });

export class DeploySettingsError extends Error {
  override name = 'DeploySettingsError';
}

/** Domains reserved for documentation (RFC 2606, RFC 6761): a deployment that names one is not configured yet. */
const PLACEHOLDER_HOST = /(^|\.)(example\.(com|org|net)|test|invalid|localhost)$/i;

/**
 * Reads the deployment's settings from context (`cdk.json`'s "context", which an admin edits once, or
 * `cdk deploy -c key=value`). The issuer, its audience and the sender have no default: synth refuses
 * without them, and refuses documentation placeholders unless `allowPlaceholders=true` (tests and
 * `npm run synth` only), so that a redeploy cannot quietly point the authorizer somewhere else.
 */
export function propsFromContext(app: App): ControlPlaneProps {
  const raw = (key: string): string | undefined => {
    const value: unknown = app.node.tryGetContext(key);
    return value === undefined || value === '' ? undefined : String(value);
  };
  const ctx = (key: string, fallback: string): string => raw(key) ?? fallback;
  const placeholdersAllowed = raw('allowPlaceholders') === 'true';
  /** An object setting: from cdk.json as an object, or from `-c key='{...}'` as JSON text. */
  const jsonContext = <T>(key: string, schema: z.ZodType<T>): T | undefined => {
    const value: unknown = app.node.tryGetContext(key);
    if (value === undefined || value === '') return undefined;
    let parsed: unknown = value;
    if (typeof value === 'string') {
      try {
        parsed = JSON.parse(value);
      } catch {
        throw new DeploySettingsError(`context ${key} is not JSON`);
      }
    }
    const result = schema.safeParse(parsed);
    if (!result.success) throw new DeploySettingsError(`context ${key} is invalid: ${result.error.issues.map((i) => `${i.path.join('.')} ${i.message}`).join('; ')}`);
    return result.data;
  };
  const required = (key: string, hostOf: (value: string) => string, example: string): string => {
    const value = raw(key);
    if (!value) throw new DeploySettingsError(`context ${key} is not set: add it to cdk.json's "context" or pass -c ${key}=${example}`);
    if (!placeholdersAllowed && PLACEHOLDER_HOST.test(hostOf(value))) throw new DeploySettingsError(`context ${key} is a placeholder (${value}): set your own`);
    return value;
  };
  const oidcIssuer = required('oidcIssuer', (v) => (URL.canParse(v) ? new URL(v).hostname : ''), 'https://login.example.com/');
  if (!URL.canParse(oidcIssuer) || new URL(oidcIssuer).protocol !== 'https:') throw new DeploySettingsError('oidcIssuer must be an https URL');
  const senderEmail = required('senderEmail', (v) => v.split('@')[1] ?? '', 'twokey@example.com');
  if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(senderEmail)) throw new DeploySettingsError('senderEmail must be an email address');
  const retentionDays = Number(ctx('recordingRetentionDays', '365'));
  const lockMode = ctx('objectLockMode', 'GOVERNANCE');
  if (lockMode !== 'GOVERNANCE' && lockMode !== 'COMPLIANCE') throw new DeploySettingsError('objectLockMode must be GOVERNANCE or COMPLIANCE');
  if (!Number.isInteger(retentionDays) || retentionDays < 1) throw new DeploySettingsError('recordingRetentionDays must be a whole number of days');
  const sesIdentity = ctx('sesIdentity', 'domain');
  if (sesIdentity !== 'domain' && sesIdentity !== 'email' && sesIdentity !== 'existing') throw new DeploySettingsError('sesIdentity must be domain, email or existing');
  const oidcAudience = required('oidcAudience', () => '', 'twokey');
  const dataPlaneAudience = ctx('dataPlaneAudience', 'twokey-data');
  if (oidcAudience === dataPlaneAudience) throw new DeploySettingsError('oidcAudience (the HTTP API) and dataPlaneAudience (agents) must differ');
  const samlIdp = jsonContext('samlIdp', samlIdpSchema);
  const reviewerOidc = jsonContext('reviewerOidc', reviewerOidcContextSchema);
  const reviewerOidcClientSecret = ctx('reviewerOidcClientSecret', 'false') === 'true';
  if (reviewerOidcClientSecret && !reviewerOidc) throw new DeploySettingsError('reviewerOidcClientSecret needs reviewerOidc');
  return {
    slack: ctx('slack', 'false') === 'true',
    samlIdp,
    reviewerOidc,
    reviewerOidcClientSecret,
    oidcIssuer,
    oidcAudience,
    dataPlaneAudience,
    groupsClaim: ctx('groupsClaim', 'groups'),
    adminGroup: ctx('adminGroup', 'admin'),
    auditorGroup: ctx('auditorGroup', 'auditor'),
    senderEmail,
    sesIdentity,
    sesIdentityName: raw('sesIdentityName'),
    createApiGatewayAccount: ctx('createApiGatewayAccount', 'true') === 'true',
    alarmEmail: raw('alarmEmail'),
    deletionProtection: ctx('deletionProtection', 'true') === 'true',
    recordingRetentionDays: retentionDays,
    objectLockMode: lockMode,
    logRetention: RetentionDays.ONE_YEAR,
  };
}

export function buildApp(app = new App()): { app: App; stack: ControlPlaneStack } {
  const stack = new ControlPlaneStack(app, 'TwokeyControlPlane', {
    ...propsFromContext(app),
    description: 'twokey control plane: approvals, policy, recordings',
  });
  applyNagSuppressions(stack);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  return { app, stack };
}

if (require.main === module) buildApp().app.synth();
