import { execFile } from 'node:child_process';
import { KmsStandIn } from '../support/kms-stand-in';
import { PG_TEST_POLICY, startPgStack, type PgStack } from '../support/pg-stack';
import { IDP_ENTITY_ID, newSigningPair, samlSignIn, type SigningPair } from '../support/saml-idp';

describe('a SAML sign-in to psql, the token signed by a KMS key as on AWS (KMS stand-in through the SDK)', () => {
  const kms = new KmsStandIn();
  let stack: PgStack;
  let idpKeys: SigningPair;

  beforeAll(async () => {
    idpKeys = newSigningPair();
    const endpoint = await kms.start();
    const { arn } = kms.addKey();
    stack = await startPgStack({
      policy: PG_TEST_POLICY,
      samlIdp: { entryPoint: 'https://idp.test/sso', idpIssuer: IDP_ENTITY_ID, idpCert: idpKeys.cert, groupsAttribute: 'groups' },
      kmsTokenKey: { endpoint, keyId: arn },
    });
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
    await kms.stop();
  });

  /** What the browser does: /saml/login, the IdP's signed answer posted to the ACS, the token back. */
  async function samlToken(nameId: string, groups: string[]): Promise<string> {
    const res = await samlSignIn(stack.cp.httpUrl, idpKeys, nameId, groups);
    expect(res.status).toBe(200);
    return ((await res.json()) as { token: string }).token;
  }

  function psql(token: string, sql: string): Promise<string> {
    const { host, port } = stack.endpoint('test-pg');
    return new Promise((resolve) => {
      execFile('psql', [`host=${host} port=${port} dbname=demo user=whoever`, '-X', '-A', '-t', '-c', sql], { env: { ...process.env, PGPASSWORD: token } }, (_e, stdout, stderr) => resolve(stdout + stderr));
    });
  }

  it('lets the signed-in user read through an agent that trusts the issuers its registration listed', async () => {
    const token = await samlToken('alice@example.com', ['support']);

    expect((await psql(token, 'SELECT 40 + 2')).trim()).toBe('42');
    expect(await psql(token, 'DROP TABLE orders')).toContain('twokey: blocked by no-destructive');
  });

  it('refuses the token once its signature no longer verifies', async () => {
    const token = await samlToken('alice@example.com', ['support']);
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), groups: ['dba'] })).toString('base64url');

    expect(await psql(`${header}.${forged}.${signature}`, 'SELECT 1')).toMatch(/password authentication failed/);
  });
});
