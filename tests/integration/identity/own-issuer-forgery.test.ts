import { importJWK, SignJWT, type JWK } from 'jose';
import { createHmac } from 'node:crypto';
import { fetchJson } from '../../../core/identity/fetch-json';
import { TokenVerifier, type IssuerConfig } from '../../../core/identity/verifier';
import type { LocalControlPlane } from '../../../local/control-plane';
import { api, startTestControlPlane, tokenFor } from '../../support/control-plane';
import { IDP_ENTITY_ID, newSigningPair, samlSignIn, type SigningPair } from '../../support/saml-idp';

const json = { 'content-type': 'application/json' };
const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/** Attacks on the control plane's own tokens, verified as an agent does with the issuers its registration lists. */
describe("forged and misused tokens of the control plane's own issuer", () => {
  let cp: LocalControlPlane;
  let idpKeys: SigningPair;
  let agent: TokenVerifier;
  let token: string;
  let ownKey: JWK;

  beforeAll(async () => {
    idpKeys = newSigningPair();
    cp = await startTestControlPlane(undefined, 0, false, {
      samlIdp: { entryPoint: 'https://idp.test/sso', idpIssuer: IDP_ENTITY_ID, idpCert: idpKeys.cert, groupsAttribute: 'groups' },
    });
    const admin = await tokenFor(cp, 'root', ['admin']);
    const created = await api(cp, admin, 'POST', '/agents', JSON.stringify({ name: 'edge-forgery' }), json);
    agent = new TokenVerifier((created.body.setup as { issuers: IssuerConfig[] }).issuers, { fetchJson, nowMs: Date.now });

    token = ((await (await samlSignIn(cp.httpUrl, idpKeys, 'carol@example.com', ['support'])).json()) as { token: string }).token;
    [ownKey] = ((await (await fetch(`${cp.tokenIssuer}/jwks.json`)).json()) as { keys: JWK[] }).keys as [JWK];
  }, 60_000);
  afterAll(async () => {
    await cp?.stop();
  });

  const claims = (): Record<string, unknown> => JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()) as Record<string, unknown>;

  it('is a psql password for the agent and nothing at the HTTP API', async () => {
    expect(await agent.verify(token)).toMatchObject({ ok: true, value: { subject: 'carol@example.com', issuer: cp.tokenIssuer } });
    expect((await api(cp, token, 'GET', '/ssh-keys')).status).toBe(401);
    expect((await api(cp, token, 'POST', '/ssh-keys', JSON.stringify({ publicKey: 'ssh-ed25519 AAAA' }), json)).status).toBe(401);
  });

  it('refuses its claims raised to admin under the original signature, with alg none, and HMAC keyed with the public key', async () => {
    const [header, , signature] = token.split('.') as [string, string, string];
    const raised = b64({ ...claims(), groups: ['admin', 'dba'] });
    expect((await agent.verify(`${header}.${raised}.${signature}`)).ok).toBe(false);
    expect((await agent.verify(`${b64({ alg: 'none', kid: ownKey.kid, typ: 'JWT' })}.${raised}.`)).ok).toBe(false);
    for (const secret of [JSON.stringify(ownKey), `${ownKey.x}${ownKey.y}`, Buffer.from(`${ownKey.x}`, 'base64url').toString('latin1')]) {
      const input = `${b64({ alg: 'HS256', kid: ownKey.kid, typ: 'JWT' })}.${raised}`;
      expect((await agent.verify(`${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`)).ok).toBe(false);
    }
  });

  it("refuses a token naming the control plane as issuer but signed by another trusted issuer's key, whichever kid it names", async () => {
    const devKey = await importJWK(cp.signingKey.privateJwk, 'ES256');
    for (const kid of [cp.signingKey.kid, ownKey.kid as string]) {
      const forged = await new SignJWT({ ...claims(), groups: ['admin'] }).setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT' }).sign(devKey);
      expect(await agent.verify(forged)).toMatchObject({ ok: false });
    }
  });

  it("refuses a dev-issuer token for the API's audience at the agent, and one for the data plane at the API", async () => {
    expect(await agent.verify(await tokenFor(cp, 'mallory', ['admin']))).toMatchObject({ ok: false, error: { reason: 'bad-claims' } });
    const dataToken = await tokenFor(cp, 'mallory', ['admin'], { audience: 'data' });
    expect(await agent.verify(dataToken)).toMatchObject({ ok: true });
    expect((await api(cp, dataToken, 'GET', '/ssh-keys')).status).toBe(401);
  });
});
