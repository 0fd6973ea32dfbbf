import { GetPublicKeyCommand, KMSClient, SignCommand } from '@aws-sdk/client-kms';
import { calculateJwkThumbprint, decodeProtectedHeader, type JWK } from 'jose';
import { createHash, generateKeyPairSync, sign, verify } from 'node:crypto';
import { fetchJson } from '../../../core/identity/fetch-json';
import { TokenVerifier } from '../../../core/identity/verifier';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../../local/aws/credentials';
import type { LocalControlPlane } from '../../../local/control-plane';
import { DEV_AUDIENCES } from '../../../local/oidc/dev-issuer';
import { joseSignatureOf, kmsTokenSigner } from '../../../lambdas/shared/token-signer';
import { api, startTestControlPlane, tokenFor } from '../../support/control-plane';
import { KmsStandIn, type StandInKey } from '../../support/kms-stand-in';
import { IDP_ENTITY_ID, newSigningPair, samlSignIn, type SigningPair } from '../../support/saml-idp';

const IDENTITY = { subject: 'carol@example.com', name: 'carol', email: 'carol@example.com', groups: ['dba'] };

describe('the control plane signs its own tokens with a KMS key (AWS SDK against a strict KMS stand-in)', () => {
  const kms = new KmsStandIn();
  let endpoint: string;
  let client: KMSClient;
  let key: StandInKey;

  beforeAll(async () => {
    endpoint = await kms.start();
    client = new KMSClient({ endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
    key = kms.addKey();
  });
  afterAll(async () => {
    client.destroy();
    await kms.stop();
  });

  it('signs ES256 tokens whose kid is the thumbprint of the public key KMS holds', async () => {
    const signer = kmsTokenSigner(client, key.arn, 'https://cp.test/tokens', 'twokey-data');

    const token = await signer.sign(IDENTITY, 600);

    const [jwk] = await signer.publicJwks();
    const expected = await calculateJwkThumbprint(key.publicKey.export({ format: 'jwk' }) as JWK);
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'ES256', kid: expected, typ: 'JWT' });
    expect(jwk).toMatchObject({ kty: 'EC', crv: 'P-256', kid: expected, alg: 'ES256', use: 'sig' });
    expect(jwk).not.toHaveProperty('d');
    const [header, payload, signature] = token.split('.') as [string, string, string];
    expect(verify('sha256', Buffer.from(`${header}.${payload}`), { key: key.publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(signature, 'base64url'))).toBe(true);
  });

  it('refuses to sign with a key of another spec or usage, as KMS would refuse it', async () => {
    const rsa = kms.addKey('RSA_2048');
    const symmetric = kms.addKey('ECC_NIST_P256', 'ENCRYPT_DECRYPT');

    await expect(kmsTokenSigner(client, rsa.keyId, 'https://cp.test/tokens', 'twokey-data').sign(IDENTITY, 600)).rejects.toThrow(/ECC_NIST_P256/);
    await expect(kmsTokenSigner(client, symmetric.keyId, 'https://cp.test/tokens', 'twokey-data').sign(IDENTITY, 600)).rejects.toThrow();
    await expect(kmsTokenSigner(client, 'no-such-key', 'https://cp.test/tokens', 'twokey-data').sign(IDENTITY, 600)).rejects.toMatchObject({ name: 'NotFoundException' });
  });

  it('has a stand-in as strict as KMS: no unsigned call, no algorithm the key cannot do, no digest of the wrong length', async () => {
    const digest = createHash('sha256').update('x').digest();
    const rsa = kms.addKey('RSA_2048');

    await expect(client.send(new SignCommand({ KeyId: key.keyId, Message: digest, MessageType: 'DIGEST', SigningAlgorithm: 'RSASSA_PSS_SHA_256' }))).rejects.toMatchObject({ name: 'InvalidKeyUsageException' });
    await expect(client.send(new SignCommand({ KeyId: rsa.keyId, Message: digest, MessageType: 'DIGEST', SigningAlgorithm: 'ECDSA_SHA_256' }))).rejects.toMatchObject({ name: 'InvalidKeyUsageException' });
    await expect(client.send(new SignCommand({ KeyId: key.keyId, Message: digest.subarray(1), MessageType: 'DIGEST', SigningAlgorithm: 'ECDSA_SHA_256' }))).rejects.toMatchObject({ name: 'ValidationException' });
    await expect(client.send(new SignCommand({ KeyId: key.keyId, Message: Buffer.alloc(4097), MessageType: 'RAW', SigningAlgorithm: 'ECDSA_SHA_256' }))).rejects.toMatchObject({ name: 'ValidationException' });
    const unsigned = await fetch(endpoint, { method: 'POST', headers: { 'x-amz-target': 'TrentService.GetPublicKey', 'content-type': 'application/x-amz-json-1.1' }, body: JSON.stringify({ KeyId: key.keyId }) });
    expect(unsigned.status).toBe(400);
    const out = await client.send(new SignCommand({ KeyId: key.keyId, Message: digest, MessageType: 'DIGEST', SigningAlgorithm: 'ECDSA_SHA_256' }));
    expect(verify('sha256', Buffer.from('x'), key.publicKey, Buffer.from(out.Signature as Uint8Array))).toBe(true);
    expect((await client.send(new GetPublicKeyCommand({ KeyId: key.keyId }))).KeySpec).toBe('ECC_NIST_P256');
  });

  describe('a SAML sign-in on a control plane whose tokens KMS signs', () => {
    let cp: LocalControlPlane;
    let idpKeys: SigningPair;

    beforeAll(async () => {
      idpKeys = newSigningPair();
      cp = await startTestControlPlane(undefined, 0, false, {
        samlIdp: { entryPoint: 'https://idp.test/sso', idpIssuer: IDP_ENTITY_ID, idpCert: idpKeys.cert, groupsAttribute: 'groups' },
        kmsTokenKey: { endpoint, keyId: key.arn },
      });
    }, 60_000);
    afterAll(async () => {
      await cp?.stop();
    });

    it("gives a token that an agent verifies through the control plane's discovery document and JWKS", async () => {
      const signsBefore = kms.signCalls;

      const res = await samlSignIn(cp.httpUrl, idpKeys, 'carol@example.com', ['dba']);
      const { token } = (await res.json()) as { token: string };

      expect(res.status).toBe(200);
      expect(kms.signCalls).toBe(signsBefore + 1);
      const agent = new TokenVerifier([{ issuer: cp.tokenIssuer, audience: DEV_AUDIENCES.data, groupsClaim: 'groups' }], { fetchJson, nowMs: Date.now });
      expect(await agent.verify(token)).toMatchObject({ ok: true, value: { subject: 'carol@example.com', groups: ['dba'], issuer: `${cp.httpUrl}/tokens` } });
      const api = new TokenVerifier([{ issuer: cp.tokenIssuer, audience: DEV_AUDIENCES.api }], { fetchJson, nowMs: Date.now });
      expect(await api.verify(token)).toMatchObject({ ok: false });
    });

    it('lists its own issuer among those a newly registered agent is to trust', async () => {
      const admin = await tokenFor(cp, 'root', ['admin']);

      const created = await api(cp, admin, 'POST', '/agents', JSON.stringify({ name: 'edge-kms' }), { 'content-type': 'application/json' });

      expect((created.body.setup as { issuers: unknown[] }).issuers).toContainEqual({ issuer: cp.tokenIssuer, audience: DEV_AUDIENCES.data, refusedAudiences: [DEV_AUDIENCES.api], groupsClaim: 'groups' });
    });
  });
});

describe('joseSignatureOf (DER ECDSA to the JWS r||s form)', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });

  it('turns every DER signature into one that verifies as IEEE P1363, whatever the lengths of r and s', () => {
    for (let i = 0; i < 200; i++) {
      const message = Buffer.from(`message ${i}`);
      const der = sign('sha256', message, privateKey);
      const jose = joseSignatureOf(der);
      expect(jose).toHaveLength(64);
      expect(verify('sha256', message, { key: publicKey, dsaEncoding: 'ieee-p1363' }, jose)).toBe(true);
    }
  });

  it('refuses what is not one DER sequence of two integers of at most 32 bytes', () => {
    const der = sign('sha256', Buffer.from('m'), privateKey);
    expect(() => joseSignatureOf(der.subarray(0, der.length - 1))).toThrow();
    expect(() => joseSignatureOf(Buffer.concat([der, Buffer.from([0])]))).toThrow();
    expect(() => joseSignatureOf(Buffer.from([0x30, 0x06, 0x02, 0x01, 0x01, 0x04, 0x01, 0x01]))).toThrow();
    const big = Buffer.concat([Buffer.from([0x02, 33, 0x01]), Buffer.alloc(32, 1)]);
    expect(() => joseSignatureOf(Buffer.concat([Buffer.from([0x30, big.length * 2]), big, big]))).toThrow(/out of range/);
  });
});
