import { createHmac, timingSafeEqual } from 'node:crypto';
import { err, ok, type Result } from '../result';

/**
 * Approval link tokens: `<payload>.<signature>`, base64url JSON signed with HMAC-SHA256. Bound to one
 * request and one reviewer, expiring with the request. Single use is enforced by the vote store
 * (a reviewer votes once). The Step Functions task token never appears in a link.
 */
export interface LinkClaims {
  readonly requestId: string;
  /** The reviewer's principal key (`principalKey`), never an address. */
  readonly reviewer: string;
  /** Expiry, seconds since the epoch. */
  readonly exp: number;
  readonly nonce: string;
}

export type LinkRejection = 'malformed' | 'bad-signature' | 'expired';
const MAX_LINK_TOKEN_CHARS = 2048;

export function signLinkToken(claims: LinkClaims, key: Buffer): string {
  const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
  return `${payload}.${createHmac('sha256', key).update(payload).digest('base64url')}`;
}

export function verifyLinkToken(token: string, key: Buffer, now: Date): Result<LinkClaims, LinkRejection> {
  if (token.length > MAX_LINK_TOKEN_CHARS) return err('malformed');
  const [payload, signature, extra] = token.split('.');
  if (!payload || !signature || extra !== undefined) return err('malformed');
  const expected = createHmac('sha256', key).update(payload).digest();
  const given = Buffer.from(signature, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return err('bad-signature');
  let claims: LinkClaims;
  try {
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as LinkClaims;
  } catch {
    return err('malformed');
  }
  if (typeof claims.requestId !== 'string' || typeof claims.reviewer !== 'string' || typeof claims.exp !== 'number') return err('malformed');
  if (now.getTime() / 1000 >= claims.exp) return err('expired');
  return ok(claims);
}
