import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const KEY_PREFIX = 'tka_';
const KEY_SECRET_BYTES = 32;
const MAX_KEY_LENGTH = 512;

/** An agent key names its agent, so the check is one lookup and one constant-time comparison. */
export function newAgentKey(agent: string): { key: string; hash: string } {
  const key = `${KEY_PREFIX}${agent}.${randomBytes(KEY_SECRET_BYTES).toString('base64url')}`;
  return { key, hash: hashAgentKey(key) };
}

export function hashAgentKey(key: string): string {
  // The secret is 256 random bits, so a plain SHA-256 resists guessing; no slow KDF is needed.
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export function agentOfKey(key: string): string | undefined {
  if (key.length > MAX_KEY_LENGTH || !key.startsWith(KEY_PREFIX)) return undefined;
  const dot = key.lastIndexOf('.');
  return dot > KEY_PREFIX.length ? key.slice(KEY_PREFIX.length, dot) : undefined;
}

export function keyMatchesHash(key: string, storedHash: string): boolean {
  const a = Buffer.from(hashAgentKey(key), 'hex');
  const b = Buffer.from(storedHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}
