import { App, Validations } from 'aws-cdk-lib';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ControlPlaneStack, type ControlPlaneProps } from './control-plane-stack';
import { applyNagSuppressions } from './nag-suppressions';

/** Reads the deployment's context parameters (`cdk deploy -c key=value`), with defaults for synth. */
export function propsFromContext(app: App): ControlPlaneProps {
  const ctx = (key: string, fallback: string): string => {
    const value: unknown = app.node.tryGetContext(key);
    return value === undefined ? fallback : String(value);
  };
  const retentionDays = Number(ctx('recordingRetentionDays', '365'));
  const lockMode = ctx('objectLockMode', 'GOVERNANCE');
  if (lockMode !== 'GOVERNANCE' && lockMode !== 'COMPLIANCE') throw new Error('objectLockMode must be GOVERNANCE or COMPLIANCE');
  if (!Number.isInteger(retentionDays) || retentionDays < 1) throw new Error('recordingRetentionDays must be a whole number of days');
  const oidcAudience = ctx('oidcAudience', 'twokey');
  const dataPlaneAudience = ctx('dataPlaneAudience', 'twokey-data');
  if (oidcAudience === dataPlaneAudience) throw new Error('oidcAudience (the HTTP API) and dataPlaneAudience (agents) must differ');
  return {
    oidcIssuer: ctx('oidcIssuer', 'https://login.example.com'),
    oidcAudience,
    dataPlaneAudience,
    groupsClaim: ctx('groupsClaim', 'groups'),
    adminGroup: ctx('adminGroup', 'admin'),
    auditorGroup: ctx('auditorGroup', 'auditor'),
    senderEmail: ctx('senderEmail', 'twokey@example.com'),
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
