import { createHash, createPublicKey, type JsonWebKey } from 'node:crypto';
import { err, ok, type Result } from '../result';
import { SshWireReader } from './wire';

/**
 * OpenSSH public keys as callers register them (one `authorized_keys`-style line: type, base64 blob,
 * optional comment). The blob is the RFC 4253 §6.6 encoding; it is parsed whole and strictly, so that
 * what is stored is exactly one well-formed key of an accepted type.
 */

/** A key line longer than this is refused before it is parsed (a 16384-bit RSA key is under 3 KB). */
export const MAX_PUBLIC_KEY_LINE_BYTES = 8 * 1024;
/** Shorter RSA moduli are refused (NIST SP 800-131A); longer ones only cost the server time. */
export const MIN_RSA_BITS = 2048;
export const MAX_RSA_BITS = 16384;
export const MAX_KEY_COMMENT_CHARS = 256;

/** The key types accepted. DSA (`ssh-dss`), security-key (`sk-*`) and certificate types are refused. */
export const SSH_KEY_TYPES = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'ssh-rsa'] as const;
export type SshKeyType = (typeof SSH_KEY_TYPES)[number];

/** The curves of the ECDSA types (RFC 5656 §6.1), their JWK names and their coordinate lengths. */
const EC_CURVES = {
  'ecdsa-sha2-nistp256': { id: 'nistp256', jwk: 'P-256', coordinateBytes: 32 },
  'ecdsa-sha2-nistp384': { id: 'nistp384', jwk: 'P-384', coordinateBytes: 48 },
  'ecdsa-sha2-nistp521': { id: 'nistp521', jwk: 'P-521', coordinateBytes: 66 },
} as const;
const ED25519_KEY_BYTES = 32;

export interface SshPublicKey {
  readonly type: SshKeyType;
  /** The wire encoding of the key (what SSH's publickey authentication carries). */
  readonly blob: Buffer;
  readonly comment: string;
  /** As `ssh-keygen -lf` prints it: `SHA256:` and the unpadded base64 of the blob's SHA-256. */
  readonly fingerprint: string;
  /** Modulus bits for RSA; the curve's or Ed25519's size otherwise. */
  readonly bits: number;
}

export class InvalidPublicKeyError extends Error {
  override name = 'InvalidPublicKeyError';
}

export function sshFingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The line `ssh-keygen` would write for this key (`type base64 comment`). */
export function publicKeyLine(key: Pick<SshPublicKey, 'type' | 'blob' | 'comment'>): string {
  return `${key.type} ${key.blob.toString('base64')}${key.comment ? ` ${key.comment}` : ''}`;
}

const fail = (message: string): { ok: false; error: InvalidPublicKeyError } => err(new InvalidPublicKeyError(message));

/** Parses one public key line; anything but one accepted key, well formed, is refused with the reason. */
export function parsePublicKeyLine(line: string): Result<SshPublicKey, InvalidPublicKeyError> {
  if (Buffer.byteLength(line, 'utf8') > MAX_PUBLIC_KEY_LINE_BYTES) return fail(`a public key line is at most ${MAX_PUBLIC_KEY_LINE_BYTES} bytes`);
  const match = /^([a-z0-9@.-]{1,64}) ([A-Za-z0-9+/]+={0,2})(?: ([\x20-\x7e]*))?$/.exec(line.trim());
  if (!match) return fail('expected one line: key type, base64 key, optional printable comment (no options, no line breaks)');
  const [, typeName = '', base64 = '', comment = ''] = match;
  if (typeName === 'ssh-dss') return fail('DSA keys are refused (1024-bit, deprecated by OpenSSH)');
  if (!(SSH_KEY_TYPES as readonly string[]).includes(typeName)) return fail(`key type ${typeName} is not accepted (accepted: ${SSH_KEY_TYPES.join(', ')})`);
  const type = typeName as SshKeyType;
  if (comment.length > MAX_KEY_COMMENT_CHARS) return fail(`the comment is at most ${MAX_KEY_COMMENT_CHARS} characters`);
  const blob = Buffer.from(base64, 'base64');
  // Node's decoder skips what it does not understand; only a blob that encodes back to the same text is the text.
  if (base64.length % 4 !== 0 || blob.toString('base64') !== base64) return fail('the key is not canonical base64');
  const valid = validateBlob(type, blob);
  if (!valid.ok) return valid;
  return ok({ type, blob, comment: comment.trim(), fingerprint: sshFingerprint(blob), bits: valid.value.bits });
}

/** A parsed key as a JWK (what Node's crypto verifies with). */
export function publicKeyJwk(key: Pick<SshPublicKey, 'type' | 'blob'>): JsonWebKey {
  const valid = validateBlob(key.type, key.blob);
  if (!valid.ok) throw valid.error;
  return valid.value.jwk;
}

/** A positive mpint in its minimal encoding (RFC 4251 §5): a leading zero byte only before a set high bit. */
function positiveMpint(value: Buffer | undefined): Buffer | undefined {
  if (!value || value.length === 0 || (value[0] as number) & 0x80) return undefined;
  if (value[0] === 0 && (value.length === 1 || !((value[1] as number) & 0x80))) return undefined;
  return value[0] === 0 ? value.subarray(1) : value;
}

function bitLength(magnitude: Buffer): number {
  return (magnitude.length - 1) * 8 + (32 - Math.clz32(magnitude[0] as number));
}

/** Checks a key blob whole; gives its size in bits and the key as a JWK. */
function validateBlob(type: SshKeyType, blob: Buffer): Result<{ bits: number; jwk: JsonWebKey }, InvalidPublicKeyError> {
  const reader = new SshWireReader(blob);
  if (reader.string()?.toString('latin1') !== type) return fail(`the key's encoded type is not ${type}`);
  let bits: number;
  let jwk: JsonWebKey;
  if (type === 'ssh-ed25519') {
    const point = reader.string();
    if (point?.length !== ED25519_KEY_BYTES) return fail('an Ed25519 key is 32 bytes');
    bits = 256;
    jwk = { kty: 'OKP', crv: 'Ed25519', x: point.toString('base64url') };
  } else if (type === 'ssh-rsa') {
    const e = positiveMpint(reader.string());
    const n = positiveMpint(reader.string());
    if (!e || !n) return fail('the RSA key is malformed');
    bits = bitLength(n);
    if (bits < MIN_RSA_BITS) return fail(`RSA keys shorter than ${MIN_RSA_BITS} bits are refused (this one has ${bits})`);
    if (bits > MAX_RSA_BITS) return fail(`RSA keys longer than ${MAX_RSA_BITS} bits are refused`);
    // An even or tiny exponent is no RSA key anyone's ssh-keygen makes.
    if (e.length > 8 || !((e[e.length - 1] as number) & 1) || (e.length === 1 && (e[0] as number) < 3)) return fail('the RSA exponent is not acceptable');
    jwk = { kty: 'RSA', n: n.toString('base64url'), e: e.toString('base64url') };
  } else {
    const curve = EC_CURVES[type];
    if (reader.string()?.toString('latin1') !== curve.id) return fail(`the key's curve is not ${curve.id}`);
    const point = reader.string();
    // Uncompressed points only (SEC 1 §2.3.3: 0x04, X, Y), as OpenSSH writes them.
    if (!point || point.length !== 1 + 2 * curve.coordinateBytes || point[0] !== 0x04) return fail('the ECDSA point is malformed');
    const x = point.subarray(1, 1 + curve.coordinateBytes).toString('base64url');
    const y = point.subarray(1 + curve.coordinateBytes).toString('base64url');
    jwk = { kty: 'EC', crv: curve.jwk, x, y };
    try {
      // OpenSSL checks that the point is on the curve.
      createPublicKey({ key: jwk, format: 'jwk' });
    } catch {
      return fail('the ECDSA point is not on its curve');
    }
    bits = curve.coordinateBytes === 66 ? 521 : curve.coordinateBytes * 8;
  }
  if (!reader.done) return fail('the key has trailing bytes');
  return ok({ bits, jwk });
}

/**
 * Whether a publickey authentication's algorithm name goes with a key type: the type itself, or for
 * RSA the SHA-2 signature algorithms of RFC 8332 (servers such as ssh2 may report either name).
 */
export function algorithmMatchesKeyType(algorithm: string, type: SshKeyType): boolean {
  if (type === 'ssh-rsa') return algorithm === 'ssh-rsa' || algorithm === 'rsa-sha2-256' || algorithm === 'rsa-sha2-512';
  return algorithm === type;
}

/** The key type a blob says it is, when it is one of the accepted types (no other validation). */
export function keyTypeOfBlob(blob: Buffer): SshKeyType | undefined {
  const name = new SshWireReader(blob).string()?.toString('latin1');
  return (SSH_KEY_TYPES as readonly string[]).includes(name ?? '') ? (name as SshKeyType) : undefined;
}
