import type { JWK } from 'jose';
import type { ControlPlaneDeps, TokenSigner } from './deps';
import { NotFoundError } from './errors';

function signerOf(deps: Pick<ControlPlaneDeps, 'saml'>): TokenSigner {
  if (!deps.saml) throw new NotFoundError('the control plane issues no tokens here');
  return deps.saml.signer;
}

/**
 * The control plane as an OpenID issuer of its own tokens (OpenID Connect Discovery 1.0 §4): agents
 * find its keys the way they find any issuer's. Only what verification needs is published.
 */
export function issuerDiscovery(deps: Pick<ControlPlaneDeps, 'saml'>): Record<string, unknown> {
  const { issuer } = signerOf(deps);
  return {
    issuer,
    jwks_uri: `${issuer}/jwks.json`,
    id_token_signing_alg_values_supported: ['ES256'],
    subject_types_supported: ['public'],
    response_types_supported: ['id_token'],
  };
}

/** The issuer's public keys (from KMS GetPublicKey on AWS). */
export async function issuerJwks(deps: Pick<ControlPlaneDeps, 'saml'>): Promise<{ keys: JWK[] }> {
  return { keys: await signerOf(deps).publicJwks() };
}
