import { exportJWK, generateKeyPair, SignJWT, type JWK, type KeyLike } from 'jose';
import { createHmac } from 'node:crypto';
import { JWKS_REFETCH_COOLDOWN_MS, TokenVerifier } from '../../../core/identity/verifier';

const ISSUER = 'https://issuer.test';
const AUDIENCE = 'twokey';

interface SigningKey {
  kid: string;
  privateKey: KeyLike;
  publicJwk: JWK;
}

async function signingKey(kid: string, alg: 'ES256' | 'RS256' = 'ES256'): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

/** A fake issuer behind the injected fetch: its JWKS can be rotated and its fetches counted. */
function issuerStub(keys: SigningKey[], jwksDelayMs = 0) {
  const state = { keys, jwksFetches: 0 };
  const fetchJson = async (url: string): Promise<unknown> => {
    if (url === `${ISSUER}/.well-known/openid-configuration`) return { issuer: ISSUER, jwks_uri: `${ISSUER}/jwks` };
    if (url === `${ISSUER}/jwks`) {
      state.jwksFetches++;
      await new Promise((r) => setTimeout(r, jwksDelayMs));
      return { keys: state.keys.map((k) => k.publicJwk) };
    }
    throw new Error(`unexpected fetch ${url}`);
  };
  return { state, fetchJson };
}

const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');

async function token(key: SigningKey, claims: Record<string, unknown> = {}, alg = 'ES256'): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ groups: ['support'], email: 'alice@example.com', email_verified: true, ...claims })
    .setProtectedHeader({ alg, kid: key.kid })
    .setIssuer((claims.iss as string) ?? ISSUER)
    .setAudience((claims.aud as string | string[]) ?? AUDIENCE)
    .setSubject('alice')
    .setIssuedAt(now)
    .setExpirationTime((claims.exp as number) ?? now + 300)
    .sign(key.privateKey);
}

describe('TokenVerifier', () => {
  let key1: SigningKey;
  let clock: number;
  const nowMs = (): number => clock;

  beforeAll(async () => {
    key1 = await signingKey('k1');
  });
  beforeEach(() => {
    clock = Date.now();
  });

  it('accepts a valid token and maps its claims to an identity', async () => {
    const { fetchJson } = issuerStub([key1]);
    const verifier = new TokenVerifier([{ issuer: ISSUER, audience: AUDIENCE }], { fetchJson, nowMs });
    const result = await verifier.verify(await token(key1));
    expect(result).toEqual({ ok: true, value: { subject: 'alice', name: 'alice', email: 'alice@example.com', groups: ['support'], issuer: ISSUER } });
  });

  it('reads groups from a configured claim', async () => {
    const { fetchJson } = issuerStub([key1]);
    const verifier = new TokenVerifier([{ issuer: ISSUER, audience: AUDIENCE, groupsClaim: 'roles' }], { fetchJson, nowMs });
    const result = await verifier.verify(await token(key1, { roles: 'dba ops' }));
    expect(result.ok && result.value.groups).toEqual(['dba', 'ops']);
  });

  it.each([
    ['absent', undefined],
    ['false', false],
    ['the string "true"', 'true'],
    ['the string "false"', 'false'],
  ])('ignores the email claim when email_verified is %s', async (_label, verified) => {
    const { fetchJson } = issuerStub([key1]);
    const verifier = new TokenVerifier([{ issuer: ISSUER, audience: AUDIENCE }], { fetchJson, nowMs });
    const result = await verifier.verify(await token(key1, { email: 'bob@example.com', email_verified: verified }));
    expect(result.ok && result.value.email).toBeUndefined();
  });

  it('refuses a token that also names the other plane\'s audience, and takes one that names only its own', async () => {
    const { fetchJson } = issuerStub([key1]);
    const verifier = new TokenVerifier([{ issuer: ISSUER, audience: AUDIENCE, refusedAudiences: ['twokey-api'] }], { fetchJson, nowMs });
    const both = await verifier.verify(await token(key1, { aud: [AUDIENCE, 'twokey-api'] }));
    expect(!both.ok && both.error.reason).toBe('bad-claims');
    expect((await verifier.verify(await token(key1, { aud: [AUDIENCE, 'https://issuer.test/userinfo'] }))).ok).toBe(true);
  });

  it('shares one JWKS fetch among concurrent tokens, cold and under a burst of unknown kids', async () => {
    const { state, fetchJson } = issuerStub([key1], 20);
    const verifier = new TokenVerifier([{ issuer: ISSUER, audience: AUDIENCE }], { fetchJson, nowMs });
    const cold = await Promise.all(Array.from({ length: 10 }, async () => verifier.verify(await token(key1))));
    expect(cold.every((r) => r.ok)).toBe(true);
    expect(state.jwksFetches).toBe(1);

    clock += JWKS_REFETCH_COOLDOWN_MS + 1;
    const strangers = await Promise.all(Array.from({ length: 20 }, (_, i) => signingKey(`burst-${i}`)));
    const burst = await Promise.all(strangers.map(async (k) => verifier.verify(await token(k))));
    expect(burst.every((r) => !r.ok && r.error.reason === 'unknown-key')).toBe(true);
    expect(state.jwksFetches).toBe(2);
  });

  describe('rejects attacks', () => {
    const verifierWith = (keys: SigningKey[]) =>
      new TokenVerifier([{ issuer: ISSUER, audience: AUDIENCE }], { fetchJson: issuerStub(keys).fetchJson, nowMs });

    it('alg none', async () => {
      const unsigned = `${b64({ alg: 'none', kid: 'k1' })}.${b64({ iss: ISSUER, aud: AUDIENCE, sub: 'root', exp: 9e9, groups: ['admin'] })}.`;
      const result = await verifierWith([key1]).verify(unsigned);
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.error.reason).toBe('bad-algorithm');
    });

    it('HMAC signed with the public key as secret', async () => {
      const header = b64({ alg: 'HS256', kid: 'k1' });
      const payload = b64({ iss: ISSUER, aud: AUDIENCE, sub: 'root', exp: 9e9, groups: ['admin'] });
      const sig = createHmac('sha256', JSON.stringify(key1.publicJwk)).update(`${header}.${payload}`).digest('base64url');
      const result = await verifierWith([key1]).verify(`${header}.${payload}.${sig}`);
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.error.reason).toBe('bad-algorithm');
    });

    it('expired', async () => {
      const result = await verifierWith([key1]).verify(await token(key1, { exp: Math.floor(Date.now() / 1000) - 120 }));
      expect(!result.ok && result.error.reason).toBe('expired');
    });

    it('not yet valid', async () => {
      const result = await verifierWith([key1]).verify(await token(key1, { nbf: Math.floor(Date.now() / 1000) + 600 }));
      expect(!result.ok && result.error.reason).toBe('not-yet-valid');
    });

    it('wrong audience', async () => {
      const result = await verifierWith([key1]).verify(await token(key1, { aud: 'someone-else' }));
      expect(!result.ok && result.error.reason).toBe('bad-claims');
    });

    it('wrong issuer', async () => {
      const result = await verifierWith([key1]).verify(await token(key1, { iss: 'https://evil.test' }));
      expect(!result.ok && result.error.reason).toBe('unknown-issuer');
    });

    it('unknown kid', async () => {
      const stranger = await signingKey('k-unknown');
      const result = await verifierWith([key1]).verify(await token(stranger));
      expect(!result.ok && result.error.reason).toBe('unknown-key');
    });

    it('a known kid with a key it does not belong to', async () => {
      const forged = await signingKey('k1');
      const result = await verifierWith([key1]).verify(await token(forged));
      expect(!result.ok && result.error.reason).toBe('bad-signature');
    });

    it('tampered payload', async () => {
      const [h, , s] = (await token(key1)).split('.');
      const tampered = `${h}.${b64({ iss: ISSUER, aud: AUDIENCE, sub: 'alice', exp: 9e9, groups: ['admin'] })}.${s}`;
      const result = await verifierWith([key1]).verify(tampered);
      expect(!result.ok && result.error.reason).toBe('bad-signature');
    });

    it('garbage and oversized input', async () => {
      expect((await verifierWith([key1]).verify('not-a-token')).ok).toBe(false);
      expect((await verifierWith([key1]).verify(`a.${'b'.repeat(20000)}.c`)).ok).toBe(false);
    });
  });

  it('accepts a rotated key after refetching the JWKS, at most once per cooldown', async () => {
    const { state, fetchJson } = issuerStub([key1]);
    const verifier = new TokenVerifier([{ issuer: ISSUER, audience: AUDIENCE }], { fetchJson, nowMs });
    expect((await verifier.verify(await token(key1))).ok).toBe(true);
    expect(state.jwksFetches).toBe(1);

    const key2 = await signingKey('k2');
    state.keys = [key1, key2];
    // Within the cooldown an unknown kid does not trigger a fetch (an attacker cannot make us hammer the issuer).
    expect((await verifier.verify(await token(key2))).ok).toBe(false);
    expect(state.jwksFetches).toBe(1);

    clock += JWKS_REFETCH_COOLDOWN_MS + 1;
    expect((await verifier.verify(await token(key2))).ok).toBe(true);
    expect(state.jwksFetches).toBe(2);

    // The retired key is gone after the next refresh.
    state.keys = [key2];
    clock += JWKS_REFETCH_COOLDOWN_MS + 1;
    const stranger = await signingKey('k3');
    await verifier.verify(await token(stranger));
    expect((await verifier.verify(await token(key1))).ok).toBe(false);
  });

  it('supports RS256 keys', async () => {
    const rsa = await signingKey('r1', 'RS256');
    const verifier = new TokenVerifier([{ issuer: ISSUER, audience: AUDIENCE }], { fetchJson: issuerStub([rsa]).fetchJson, nowMs });
    expect((await verifier.verify(await token(rsa, {}, 'RS256'))).ok).toBe(true);
  });
});
