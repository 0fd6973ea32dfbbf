import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { SignedXml } from 'xml-crypto';

export const IDP_ENTITY_ID = 'https://idp.test/saml';
const RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';
const EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';

export interface SigningPair {
  readonly key: string;
  readonly cert: string;
}

/** A self-signed RSA certificate made at test time (never committed). */
export function newSigningPair(): SigningPair {
  const dir = mkdtempSync(join(tmpdir(), 'tk-saml-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-days', '1', '-subj', '/CN=twokey-test-idp'], { stdio: 'ignore' });
  return { key: readFileSync(join(dir, 'k.pem'), 'utf8'), cert: readFileSync(join(dir, 'c.pem'), 'utf8') };
}

/** The AuthnRequest ID inside a HTTP-Redirect binding URL (deflated, base64). */
export function requestIdOf(location: string): string {
  const encoded = new URL(location).searchParams.get('SAMLRequest') ?? '';
  const xml = inflateRawSync(Buffer.from(encoded, 'base64')).toString('utf8');
  const id = /\sID="([^"]+)"/.exec(xml)?.[1];
  if (!id) throw new Error('no ID in the AuthnRequest');
  return id;
}

export interface AssertionSpec {
  readonly nameId: string;
  readonly groups?: readonly string[];
  readonly inResponseTo: string;
  readonly audience: string;
  readonly recipient: string;
  readonly notOnOrAfter?: Date;
  readonly id?: string;
}

const iso = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

/** A SAML 2.0 assertion as an IdP writes it (unsigned). */
export function assertionXml(spec: AssertionSpec): string {
  const now = new Date();
  const until = iso(spec.notOnOrAfter ?? new Date(now.getTime() + 5 * 60_000));
  const groups = (spec.groups ?? []).map((g) => `<saml:AttributeValue>${g}</saml:AttributeValue>`).join('');
  return (
    `<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${spec.id ?? `_a${randomUUID()}`}" Version="2.0" IssueInstant="${iso(now)}">` +
    `<saml:Issuer>${IDP_ENTITY_ID}</saml:Issuer>` +
    `<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">${spec.nameId}</saml:NameID>` +
    `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData InResponseTo="${spec.inResponseTo}" NotOnOrAfter="${until}" Recipient="${spec.recipient}"/></saml:SubjectConfirmation></saml:Subject>` +
    `<saml:Conditions NotBefore="${iso(new Date(now.getTime() - 60_000))}" NotOnOrAfter="${until}"><saml:AudienceRestriction><saml:Audience>${spec.audience}</saml:Audience></saml:AudienceRestriction></saml:Conditions>` +
    `<saml:AuthnStatement AuthnInstant="${iso(now)}" SessionIndex="_s1"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>` +
    `<saml:AttributeStatement><saml:Attribute Name="groups">${groups}</saml:Attribute><saml:Attribute Name="email"><saml:AttributeValue>${spec.nameId}</saml:AttributeValue></saml:Attribute></saml:AttributeStatement>` +
    `</saml:Assertion>`
  );
}

/** Signs the element with `ID="id"` (enveloped, exclusive c14n, RSA-SHA256), the signature placed after its Issuer as the schema wants. */
export function signElement(xml: string, id: string, pair: SigningPair): string {
  const sig = new SignedXml({ privateKey: pair.key, publicCert: pair.cert, signatureAlgorithm: RSA_SHA256, canonicalizationAlgorithm: EXC_C14N });
  const target = `//*[@ID='${id}']`;
  sig.addReference({ xpath: target, digestAlgorithm: 'http://www.w3.org/2001/04/xmlenc#sha256', transforms: ['http://www.w3.org/2000/09/xmldsig#enveloped-signature', EXC_C14N] });
  sig.computeSignature(xml, { location: { reference: `${target}/*[local-name(.)='Issuer']`, action: 'after' } });
  return sig.getSignedXml();
}

export function idOf(xml: string): string {
  return /\sID="([^"]+)"/.exec(xml)?.[1] as string;
}

/** The Response envelope around assertions (already signed or not). */
export function responseXml(inner: string, spec: Pick<AssertionSpec, 'inResponseTo' | 'recipient'>, id = `_r${randomUUID()}`): string {
  return (
    `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${id}" Version="2.0" IssueInstant="${iso(new Date())}" Destination="${spec.recipient}" InResponseTo="${spec.inResponseTo}">` +
    `<saml:Issuer>${IDP_ENTITY_ID}</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>` +
    inner +
    `</samlp:Response>`
  );
}

/** What a browser does: /saml/login, the IdP's signed answer posted to the ACS; the ACS's answer. */
export async function samlSignIn(httpUrl: string, idpKeys: SigningPair, nameId: string, groups: readonly string[]): Promise<Response> {
  const login = await fetch(`${httpUrl}/saml/login`, { redirect: 'manual' });
  const spec = { nameId, groups, inResponseTo: requestIdOf(login.headers.get('location') as string), audience: `${httpUrl}/saml/metadata`, recipient: `${httpUrl}/saml/acs` };
  const assertion = assertionXml(spec);
  const form = new URLSearchParams({ SAMLResponse: Buffer.from(responseXml(signElement(assertion, idOf(assertion), idpKeys), spec)).toString('base64') });
  return fetch(`${httpUrl}/saml/acs`, { method: 'POST', body: form });
}
