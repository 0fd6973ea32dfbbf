import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type KeyLike } from 'jose';
import { PG_TEST_POLICY, startPgStack, type PgStack } from '../../support/pg-stack';

/** GitHub Actions' OIDC issuer; its documents are served here by a local server the test routes it to. */
const GITHUB = 'https://token.actions.githubusercontent.com';
const DEPLOY_JOB = 'repo:octo-org/deploy:environment:production';
const AUDIENCE = 'twokey-data';

const POLICY = PG_TEST_POLICY.replace(
  'blocks:',
  `  - name: deploy-pipeline
    targets: [test-pg]
    subjects: { users: [{ subject: '${DEPLOY_JOB}', issuer: '${GITHUB}' }] }
    actions: { read: allow, write: deny }
blocks:`,
);

describe('GitHub Actions workload identity: a job token accepted through the agent\'s issuer list (no secret in the pipeline)', () => {
  let stack: PgStack;
  let jwks: Server;
  let key: { privateKey: KeyLike; jwk: JWK };
  const realFetch = globalThis.fetch;

  beforeAll(async () => {
    const pair = await generateKeyPair('RS256');
    key = { privateKey: pair.privateKey, jwk: { ...(await exportJWK(pair.publicKey)), kid: 'gh-test-key', alg: 'RS256', use: 'sig' } };
    // GitHub's discovery document and JWKS, as token.actions.githubusercontent.com serves them.
    jwks = createServer((req, res) => {
      const body = req.url === '/.well-known/openid-configuration' ? { issuer: GITHUB, jwks_uri: `${GITHUB}/.well-known/jwks`, id_token_signing_alg_values_supported: ['RS256'] } : req.url === '/.well-known/jwks' ? { keys: [key.jwk] } : undefined;
      res.writeHead(body ? 200 : 404, { 'content-type': 'application/json' }).end(JSON.stringify(body ?? {}));
    });
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    const local = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}`;
    // The name resolves here to the local server; everything after (discovery, JWKS, verification) is the agent's own.
    globalThis.fetch = (input, init) => realFetch(typeof input === 'string' && input.startsWith(`${GITHUB}/`) ? local + input.slice(GITHUB.length) : input, init);
    stack = await startPgStack({ policy: POLICY, extraIssuers: [{ issuer: GITHUB, audience: AUDIENCE, groupsClaim: 'repository' }] });
  }, 120_000);
  afterAll(async () => {
    globalThis.fetch = realFetch;
    await stack?.stop();
    await new Promise<void>((resolve) => jwks?.close(() => resolve()));
  });

  /** A job's ID token with the claims GitHub puts in it (`core.getIDToken(audience)`). */
  function jobToken(options: { subject?: string; audience?: string; expiresIn?: string } = {}): Promise<string> {
    const subject = options.subject ?? DEPLOY_JOB;
    const repository = subject.split(':')[1] as string;
    return new SignJWT({ repository, repository_owner: repository.split('/')[0], ref: 'refs/heads/main', environment: 'production', job_workflow_ref: `${repository}/.github/workflows/deploy.yml@refs/heads/main`, runner_environment: 'github-hosted' })
      .setProtectedHeader({ alg: 'RS256', kid: 'gh-test-key', typ: 'JWT' })
      .setIssuer(GITHUB)
      .setAudience(options.audience ?? AUDIENCE)
      .setSubject(subject)
      .setIssuedAt()
      .setNotBefore('0s')
      .setExpirationTime(options.expiresIn ?? '5m')
      .sign(key.privateKey);
  }

  function psql(token: string, sql: string): Promise<string> {
    const { host, port } = stack.endpoint('test-pg');
    return new Promise((resolve) => {
      execFile('psql', [`host=${host} port=${port} dbname=demo user=deploy`, '-X', '-A', '-t', '-c', sql], { env: { ...process.env, PGPASSWORD: token } }, (_e, stdout, stderr) => resolve(stdout + stderr));
    });
  }

  it('lets the deploy job read with its job token as the password, and holds it to its rule', async () => {
    const token = await jobToken();

    expect((await psql(token, 'SELECT 40 + 2')).trim()).toBe('42');
    expect(await psql(token, "UPDATE orders SET status = 'x' WHERE id = 42")).toContain('twokey: ');
  });

  it("grants another repository's job nothing, and refuses GitHub's default audience and an expired token", async () => {
    expect(await psql(await jobToken({ subject: 'repo:octo-org/other:ref:refs/heads/main' }), 'SELECT 1')).toContain('twokey: no rule grants read on test-pg');
    expect(await psql(await jobToken({ audience: 'https://github.com/octo-org' }), 'SELECT 1')).toMatch(/password authentication failed/);
    expect(await psql(await jobToken({ expiresIn: '-2m' }), 'SELECT 1')).toMatch(/password authentication failed/);
  });
});
