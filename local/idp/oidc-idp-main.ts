import { createInterface } from 'node:readline';
import { readDevUsers } from '../dev-config';
import { IDP_LINE_PREFIX, startOidcIdp } from './oidc-idp';

/**
 * Runs the local OpenID provider as its own process (`oidc-provider` is an ES module that jest's
 * CommonJS loader cannot load). Protocol on stdio, one line each: it prints
 * `TWOKEY_IDP {"issuer":...}` when listening; `rotate` on stdin replaces the signing key and
 * prints `TWOKEY_IDP {"kid":...}`. Environment: TWOKEY_IDP_PORT (0), TWOKEY_IDP_SERVICE_SECRET,
 * TWOKEY_IDP_SERVICE_GROUPS (comma separated), TWOKEY_IDP_ACCESS_TOKEN_TTL (seconds),
 * TWOKEY_IDP_REVIEW_SECRET and TWOKEY_IDP_REVIEW_REDIRECT (the review client).
 */

async function main(): Promise<void> {
  const env = process.env;
  const users = readDevUsers();
  const secret = env.TWOKEY_IDP_SERVICE_SECRET;
  if (!secret) throw new Error('TWOKEY_IDP_SERVICE_SECRET is not set');
  const idp = await startOidcIdp({
    port: Number(env.TWOKEY_IDP_PORT ?? 0),
    users,
    serviceClientSecret: secret,
    serviceGroups: (env.TWOKEY_IDP_SERVICE_GROUPS ?? '').split(',').filter(Boolean),
    accessTokenTtlSeconds: env.TWOKEY_IDP_ACCESS_TOKEN_TTL ? Number(env.TWOKEY_IDP_ACCESS_TOKEN_TTL) : undefined,
    reviewClient:
      env.TWOKEY_IDP_REVIEW_SECRET && env.TWOKEY_IDP_REVIEW_REDIRECT ? { secret: env.TWOKEY_IDP_REVIEW_SECRET, redirectUri: env.TWOKEY_IDP_REVIEW_REDIRECT } : undefined,
  });
  const say = (value: unknown): void => void process.stdout.write(`${IDP_LINE_PREFIX}${JSON.stringify(value)}\n`);
  say({ issuer: idp.issuer });
  createInterface({ input: process.stdin }).on('line', (line) => {
    if (line.trim() === 'rotate') say({ kid: idp.rotateKey() });
  });
  const stop = (): void => void idp.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((e: unknown) => {
  console.error(`oidc idp: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
