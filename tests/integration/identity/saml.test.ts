import { fetchJson } from '../../../core/identity/fetch-json';
import { TokenVerifier } from '../../../core/identity/verifier';
import type { LocalControlPlane } from '../../../local/control-plane';
import { DEV_AUDIENCES } from '../../../local/oidc/dev-issuer';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { twokey } from '../../support/cli';
import { startTestControlPlane } from '../../support/control-plane';
import { runLogin } from '../../support/oidc-idp';
import { assertionXml, IDP_ENTITY_ID, idOf, newSigningPair, requestIdOf, responseXml, signElement, type AssertionSpec, type SigningPair } from '../../support/saml-idp';

describe('the control plane as a SAML service provider (@node-saml/node-saml)', () => {
  let cp: LocalControlPlane;
  let idpKeys: SigningPair;
  let sp: { entityId: string; acs: string };

  beforeAll(async () => {
    idpKeys = newSigningPair();
    cp = await startTestControlPlane(undefined, 0, false, {
      samlIdp: { entryPoint: 'https://idp.test/sso', idpIssuer: IDP_ENTITY_ID, idpCert: idpKeys.cert, groupsAttribute: 'groups' },
    });
    sp = { entityId: `${cp.httpUrl}/saml/metadata`, acs: `${cp.httpUrl}/saml/acs` };
  }, 60_000);
  afterAll(async () => {
    await cp?.stop();
  });

  /** Starts a sign-in at /saml/login and returns the AuthnRequest's ID the IdP answers. */
  async function startSignIn(relayState?: string): Promise<{ requestId: string; location: string }> {
    const query = relayState ? `?RelayState=${encodeURIComponent(relayState)}` : '';
    const res = await fetch(`${cp.httpUrl}/saml/login${query}`, { redirect: 'manual' });
    expect(res.status).toBe(302);
    const location = res.headers.get('location') as string;
    return { requestId: requestIdOf(location), location };
  }

  async function post(response: string, relayState?: string): Promise<{ status: number; body: Record<string, unknown>; location: string | null }> {
    const form = new URLSearchParams({ SAMLResponse: Buffer.from(response).toString('base64'), ...(relayState ? { RelayState: relayState } : {}) });
    const res = await fetch(`${cp.httpUrl}/saml/acs`, { method: 'POST', body: form, headers: { 'content-type': 'application/x-www-form-urlencoded' }, redirect: 'manual' });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {}, location: res.headers.get('location') };
  }

  /** A response with one assertion signed by the IdP's key, for a request of ours. */
  async function signedResponse(overrides: Partial<AssertionSpec> = {}, keys = idpKeys): Promise<string> {
    const { requestId } = await startSignIn();
    const spec: AssertionSpec = { nameId: 'alice@example.com', groups: ['support'], inResponseTo: requestId, audience: sp.entityId, recipient: sp.acs, ...overrides };
    const assertion = assertionXml(spec);
    return responseXml(signElement(assertion, idOf(assertion), keys), spec);
  }

  const agentVerifier = (): TokenVerifier => new TokenVerifier([{ issuer: cp.tokenIssuer, audience: DEV_AUDIENCES.data, groupsClaim: 'groups' }], { fetchJson, nowMs: Date.now });

  it('publishes its metadata with this entity id and assertion consumer service', async () => {
    const res = await fetch(`${cp.httpUrl}/saml/metadata`);
    const xml = await res.text();
    expect(res.status).toBe(200);
    expect(xml).toContain(`entityID="${sp.entityId}"`);
    expect(xml).toContain(`Location="${sp.acs}"`);
  });

  it('exchanges a signed assertion for a short-lived twokey token that agents verify like any issuer', async () => {
    const result = await post(await signedResponse());

    expect(result.status).toBe(200);
    expect(result.body).toMatchObject({ subject: 'alice@example.com', expiresIn: 900 });
    const verified = await agentVerifier().verify(result.body.token as string);
    expect(verified).toMatchObject({ ok: true, value: { subject: 'alice@example.com', email: 'alice@example.com', groups: ['support'], issuer: cp.tokenIssuer } });
  });

  it('hands the token to the CLI\'s loopback listener named in RelayState, and to no other address', async () => {
    const relay = 'http://127.0.0.1:48123/callback?state=s1';
    const { requestId } = await startSignIn(relay);
    const spec: AssertionSpec = { nameId: 'bob@example.com', groups: ['dba'], inResponseTo: requestId, audience: sp.entityId, recipient: sp.acs };
    const assertion = assertionXml(spec);

    const result = await post(responseXml(signElement(assertion, idOf(assertion), idpKeys), spec), relay);

    expect(result.status).toBe(303);
    expect(new URL(result.location as string).origin).toBe('http://127.0.0.1:48123');
    expect(new URL(result.location as string).searchParams.get('state')).toBe('s1');
    expect((await fetch(`${cp.httpUrl}/saml/login?RelayState=${encodeURIComponent('https://evil.test/callback')}`, { redirect: 'manual' })).status).toBe(400);
  });

  it('refuses a replayed response', async () => {
    const response = await signedResponse();
    expect((await post(response)).status).toBe(200);

    expect((await post(response)).status).toBe(403);
  });

  it('refuses an expired assertion', async () => {
    const result = await post(await signedResponse({ notOnOrAfter: new Date(Date.now() - 120_000) }));
    expect(result.status).toBe(403);
  });

  it('refuses an assertion for another audience, another recipient, or a request it never sent', async () => {
    expect((await post(await signedResponse({ audience: 'https://other-sp.test' }))).status).toBe(403);
    expect((await post(await signedResponse({ recipient: 'https://other-sp.test/acs' }))).status).toBe(403);
    expect((await post(await signedResponse({ inResponseTo: '_never-sent' }))).status).toBe(403);
  });

  it('refuses an assertion signed by a key that is not the IdP\'s', async () => {
    expect((await post(await signedResponse({}, newSigningPair()))).status).toBe(403);
  });

  it('refuses an unsigned assertion inside a signed response', async () => {
    const { requestId } = await startSignIn();
    const spec: AssertionSpec = { nameId: 'root@example.com', groups: ['admin'], inResponseTo: requestId, audience: sp.entityId, recipient: sp.acs };
    const response = responseXml(assertionXml(spec), spec);

    const result = await post(signElement(response, idOf(response), idpKeys));

    expect(result.status).toBe(403);
  });

  it('refuses XML signature wrapping: a forged assertion beside or around the signed one', async () => {
    const { requestId } = await startSignIn();
    const base = { inResponseTo: requestId, audience: sp.entityId, recipient: sp.acs };
    const genuine = assertionXml({ ...base, nameId: 'alice@example.com', groups: ['support'] });
    const signed = signElement(genuine, idOf(genuine), idpKeys);
    const forged = assertionXml({ ...base, nameId: 'root@example.com', groups: ['admin'] });
    const forgedSameId = assertionXml({ ...base, nameId: 'root@example.com', groups: ['admin'], id: idOf(genuine) });

    const beside = await post(responseXml(forged + signed, base));
    const wrapped = await post(responseXml(`<samlp:Extensions>${signed}</samlp:Extensions>${forgedSameId}`, base));

    expect(beside.status).toBe(403);
    expect(wrapped.status).toBe(403);
  });

  it('reads a NameID with a comment injected as the whole signed value, never the part before the comment', async () => {
    const { requestId } = await startSignIn();
    const spec: AssertionSpec = { nameId: 'alice@example.com.evil.test', groups: [], inResponseTo: requestId, audience: sp.entityId, recipient: sp.acs };
    const assertion = assertionXml(spec);
    // Exclusive c14n drops comments, so the IdP's signature over the attacker's own account still verifies.
    const tampered = signElement(assertion, idOf(assertion), idpKeys).replace('alice@example.com.evil.test', 'alice@example.com<!---->.evil.test');

    const result = await post(responseXml(tampered, spec));

    expect(result.status).toBe(200);
    expect(result.body.subject).toBe('alice@example.com.evil.test');
  });

  it('signs the CLI in with `twokey login --saml`: the token reaches its loopback listener and `twokey token` prints it', async () => {
    const env = { TWOKEY_CONFIG_DIR: join(mkdtempSync(join(tmpdir(), 'tk-saml-cli-')), 'twokey') };
    const login = await runLogin(['--saml', '--url', cp.httpUrl], env, /^\s+(http:\/\/\S+\/saml\/login\?\S+)$/m, async (url) => {
      // The browser: to the IdP, back with a signed response (RelayState kept), then to the CLI's listener.
      const toIdp = (await fetch(url, { redirect: 'manual' })).headers.get('location') as string;
      const spec: AssertionSpec = { nameId: 'carol@example.com', groups: ['dba'], inResponseTo: requestIdOf(toIdp), audience: sp.entityId, recipient: sp.acs };
      const assertion = assertionXml(spec);
      const acs = await post(responseXml(signElement(assertion, idOf(assertion), idpKeys), spec), new URL(toIdp).searchParams.get('RelayState') as string);
      expect(acs.status).toBe(303);
      expect((await fetch(acs.location as string)).status).toBe(200);
    });

    expect(login.code).toBe(0);
    const printed = await twokey(['token'], env);
    expect(await agentVerifier().verify(printed.stdout.trim())).toMatchObject({ ok: true, value: { subject: 'carol@example.com', groups: ['dba'] } });
  });
});
