import { SAML, ValidateInResponseTo, type CacheProvider, type Profile } from '@node-saml/node-saml';
import { DOMParser } from '@xmldom/xmldom';
import { z } from 'zod';
import { groupsAt } from '../../core/identity/claim-path';
import type { ControlPlaneDeps, TokenSigner } from './deps';
import { ForbiddenError, InvalidRequestError, NotFoundError } from './errors';
import type { SamlStore } from '../store/saml-store';

export const SAML_REQUEST_TTL_SECONDS = 300;
export const SAML_CLOCK_SKEW_MS = 30_000;
export const MAX_SAML_RESPONSE_CHARS = 200_000;
export const MAX_RELAY_STATE_CHARS = 512;
const ASSERTION_NS = 'urn:oasis:names:tc:SAML:2.0:assertion';
const BEARER = 'urn:oasis:names:tc:SAML:2.0:cm:bearer';

/** The identity provider the control plane trusts (SAML_IDP, JSON). */
export const samlIdpSchema = z.strictObject({
  /** The IdP's single sign-on URL (HTTP-Redirect binding). */
  entryPoint: z.string().url(),
  idpIssuer: z.string().min(1),
  /** The IdP's signing certificate (PEM, or its base64 body). */
  idpCert: z.string().min(1),
  groupsAttribute: z.string().min(1).default('groups'),
  emailAttribute: z.string().min(1).default('email'),
  tokenTtlSeconds: z.number().int().min(60).max(3600).default(900),
});
export type SamlIdpConfig = z.infer<typeof samlIdpSchema>;

export interface SamlDeps {
  readonly idp: SamlIdpConfig;
  readonly store: SamlStore;
  readonly signer: TokenSigner;
}

function spUrls(publicUrl: string): { entityId: string; acs: string } {
  return { entityId: `${publicUrl}/saml/metadata`, acs: `${publicUrl}/saml/acs` };
}

/** node-saml's request cache over the store. Reads never consume: the ACS takes the request itself, once, after validation. */
function requestCache(store: SamlStore): CacheProvider {
  return {
    saveAsync: async (key, value) => {
      await store.saveRequest(key, new Date(value));
      return { value, createdAt: Date.parse(value) };
    },
    getAsync: async (key) => (await store.requestCreatedAt(key)) ?? null,
    removeAsync: async (key) => key,
  };
}

function serviceProvider(deps: Pick<ControlPlaneDeps, 'publicUrl'>, saml: SamlDeps): SAML {
  const { entityId, acs } = spUrls(deps.publicUrl);
  return new SAML({
    callbackUrl: acs,
    entryPoint: saml.idp.entryPoint,
    issuer: entityId,
    audience: entityId,
    idpIssuer: saml.idp.idpIssuer,
    idpCert: saml.idp.idpCert,
    // The assertion itself must be signed: a signature over the Response alone does not cover an assertion moved or added inside it.
    wantAssertionsSigned: true,
    wantAuthnResponseSigned: false,
    validateInResponseTo: ValidateInResponseTo.always,
    requestIdExpirationPeriodMs: SAML_REQUEST_TTL_SECONDS * 1000,
    acceptedClockSkewMs: SAML_CLOCK_SKEW_MS,
    cacheProvider: requestCache(saml.store),
    disableRequestedAuthnContext: true,
    identifierFormat: null,
  });
}

function requireSaml(deps: ControlPlaneDeps, idp: SamlIdpConfig | undefined): SamlDeps {
  if (!idp || !deps.saml) throw new NotFoundError('SAML is not configured');
  return { idp, ...deps.saml };
}

export function samlMetadata(deps: ControlPlaneDeps, idp: SamlIdpConfig | undefined): string {
  return serviceProvider(deps, requireSaml(deps, idp)).generateServiceProviderMetadata(null, null);
}

/** `twokey login --saml` and browsers start here: an AuthnRequest to the IdP, remembered for `InResponseTo`. */
export async function samlLoginUrl(deps: ControlPlaneDeps, idp: SamlIdpConfig | undefined, relayState: string | undefined): Promise<string> {
  if (relayState !== undefined && (relayState.length > MAX_RELAY_STATE_CHARS || loopbackReturn(relayState) === undefined)) {
    throw new InvalidRequestError('RelayState must be a loopback callback URL');
  }
  return serviceProvider(deps, requireSaml(deps, idp)).getAuthorizeUrlAsync(relayState ?? '', undefined, {});
}

/** Only `http://127.0.0.1:<port>/callback?state=...` may receive a token by redirect (the CLI's loopback listener). */
export function loopbackReturn(relayState: string): URL | undefined {
  try {
    const url = new URL(relayState);
    return url.protocol === 'http:' && url.hostname === '127.0.0.1' && url.port !== '' && url.pathname === '/callback' && url.username === '' && url.hash === '' ? url : undefined;
  } catch {
    return undefined;
  }
}

/** The bearer confirmation of the verified assertion must name our ACS (SAML 2.0 profiles §4.1.4.2); node-saml does not check `Recipient`. */
function confirmsRecipient(assertionXml: string, acs: string): boolean {
  const doc = new DOMParser().parseFromString(assertionXml, 'text/xml');
  const confirmations = Array.from(doc.getElementsByTagNameNS(ASSERTION_NS, 'SubjectConfirmation'));
  return confirmations.some((c) => {
    if (c.getAttribute('Method') !== BEARER) return false;
    const data = c.getElementsByTagNameNS(ASSERTION_NS, 'SubjectConfirmationData')[0];
    return data?.getAttribute('Recipient') === acs;
  });
}

function assertionId(assertionXml: string): string | undefined {
  const root = new DOMParser().parseFromString(assertionXml, 'text/xml').documentElement;
  return root?.localName === 'Assertion' && root.namespaceURI === ASSERTION_NS ? (root.getAttribute('ID') ?? undefined) : undefined;
}

export interface SamlSignIn {
  readonly token: string;
  readonly expiresIn: number;
  readonly subject: string;
  /** Where to send the token: the CLI's loopback listener, when the sign-in started there. */
  readonly returnTo: URL | undefined;
}

/**
 * POST /saml/acs: a signed assertion from the configured IdP (signature, issuer, audience,
 * `NotOnOrAfter`, `InResponseTo` of a request we sent, recipient = this ACS, never seen before) is
 * exchanged for a short-lived token signed by the control plane. Why one failed is logged, not returned.
 */
export async function samlAssertionConsumer(deps: ControlPlaneDeps, idp: SamlIdpConfig | undefined, form: URLSearchParams): Promise<SamlSignIn> {
  const saml = requireSaml(deps, idp);
  const response = form.get('SAMLResponse');
  if (!response || response.length > MAX_SAML_RESPONSE_CHARS) throw new InvalidRequestError('no SAMLResponse');
  const refuse = (reason: string): never => {
    deps.log.warn('saml.rejected', { reason });
    throw new ForbiddenError('the SAML response was not accepted');
  };
  let profile: Profile | null;
  try {
    ({ profile } = await serviceProvider(deps, saml).validatePostResponseAsync({ SAMLResponse: response }));
  } catch (e) {
    return refuse(e instanceof Error ? e.message.slice(0, 200) : 'invalid');
  }
  const xml = profile?.getAssertionXml?.();
  if (!profile || !xml) return refuse('no assertion');
  if (!confirmsRecipient(xml, spUrls(deps.publicUrl).acs)) return refuse('recipient is not this ACS');
  const id = assertionId(xml);
  const inResponseTo = typeof profile.inResponseTo === 'string' ? profile.inResponseTo : undefined;
  if (!id || !inResponseTo) return refuse('assertion without ID or InResponseTo');
  if (!(await saml.store.takeRequest(inResponseTo))) return refuse('request already answered');
  const keepUntil = new Date(deps.clock().getTime() + SAML_REQUEST_TTL_SECONDS * 1000 + SAML_CLOCK_SKEW_MS);
  if (!(await saml.store.claimAssertion(`${saml.idp.idpIssuer} ${id}`, profile.nameID, keepUntil))) return refuse('assertion replayed');

  const attributes = profile as unknown as Record<string, unknown>;
  const email = attributes[saml.idp.emailAttribute];
  const identity = {
    subject: profile.nameID,
    name: profile.nameID,
    email: typeof email === 'string' ? email : undefined,
    groups: groupsAt(attributes, saml.idp.groupsAttribute),
  };
  const token = await saml.signer.sign(identity, saml.idp.tokenTtlSeconds);
  deps.log.info('saml.sign-in', { subject: identity.subject, groups: identity.groups.length });
  const relay = form.get('RelayState');
  return { token, expiresIn: saml.idp.tokenTtlSeconds, subject: identity.subject, returnTo: relay ? loopbackReturn(relay) : undefined };
}
