import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { err, ok, type Result } from '../result';
import { publicKeyJwk, type SshPublicKey } from './public-key';
import { sshString, SshWireReader } from './wire';

/**
 * OpenSSH's signature format for data (`ssh-keygen -Y sign`, PROTOCOL.sshsig): an armored blob of
 * MAGIC "SSHSIG", uint32 version 1, string publickey, string namespace, string reserved, string
 * hash_algorithm, string signature. The signature covers MAGIC, the namespace, reserved, the hash
 * algorithm and H(message), so a signature made for one namespace is no signature in another.
 */

const MAGIC = Buffer.from('SSHSIG');
const SIG_VERSION = 1;
const ARMOR_BEGIN = '-----BEGIN SSH SIGNATURE-----';
const ARMOR_END = '-----END SSH SIGNATURE-----';
/** An armored signature longer than this is refused before it is decoded (a 16384-bit RSA one is about 6 KB). */
export const MAX_SSHSIG_ARMORED_BYTES = 16 * 1024;

/** The message digests PROTOCOL.sshsig allows. */
const HASHES = { sha256: 'sha256', sha512: 'sha512' } as const;

/**
 * Signature algorithms accepted, with the digest each signs with (RFC 8709 Ed25519, RFC 5656 §6.2.1
 * ECDSA, RFC 8332 RSA). `ssh-rsa` (SHA-1) and anything else are refused.
 */
const SIGNATURE_ALGORITHMS: Record<string, { readonly keyType: SshPublicKey['type']; readonly digest: string | null }> = {
  'ssh-ed25519': { keyType: 'ssh-ed25519', digest: null },
  'ecdsa-sha2-nistp256': { keyType: 'ecdsa-sha2-nistp256', digest: 'sha256' },
  'ecdsa-sha2-nistp384': { keyType: 'ecdsa-sha2-nistp384', digest: 'sha384' },
  'ecdsa-sha2-nistp521': { keyType: 'ecdsa-sha2-nistp521', digest: 'sha512' },
  'rsa-sha2-256': { keyType: 'ssh-rsa', digest: 'sha256' },
  'rsa-sha2-512': { keyType: 'ssh-rsa', digest: 'sha512' },
};
const EC_COORDINATE_BYTES: Partial<Record<SshPublicKey['type'], number>> = { 'ecdsa-sha2-nistp256': 32, 'ecdsa-sha2-nistp384': 48, 'ecdsa-sha2-nistp521': 66 };

export class InvalidSignatureError extends Error {
  override name = 'InvalidSignatureError';
}

const fail = (message: string): { ok: false; error: InvalidSignatureError } => err(new InvalidSignatureError(message));

interface SshSig {
  readonly publicKey: Buffer;
  readonly namespace: string;
  readonly reserved: Buffer;
  readonly hashAlgorithm: string;
  readonly algorithm: string;
  readonly signature: Buffer;
}

function decodeArmor(armored: string): Buffer | undefined {
  if (Buffer.byteLength(armored, 'utf8') > MAX_SSHSIG_ARMORED_BYTES) return undefined;
  const lines = armored.trim().split(/\r?\n/);
  if (lines[0] !== ARMOR_BEGIN || lines[lines.length - 1] !== ARMOR_END) return undefined;
  const base64 = lines.slice(1, -1).join('');
  const blob = Buffer.from(base64, 'base64');
  // Node's decoder skips what it does not understand: only a blob that encodes back to the text is the text.
  return base64.length > 0 && blob.toString('base64') === base64 ? blob : undefined;
}

function parseSshSig(blob: Buffer): SshSig | undefined {
  if (blob.length < MAGIC.length || !blob.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  const reader = new SshWireReader(blob.subarray(MAGIC.length));
  if (reader.uint32() !== SIG_VERSION) return undefined;
  const publicKey = reader.string();
  const namespace = reader.string();
  const reserved = reader.string();
  const hashAlgorithm = reader.string();
  const wrapped = reader.string();
  if (!publicKey || !namespace || !reserved || !hashAlgorithm || !wrapped || !reader.done) return undefined;
  const inner = new SshWireReader(wrapped);
  const algorithm = inner.string();
  const signature = inner.string();
  if (!algorithm || !signature || !inner.done) return undefined;
  return { publicKey, namespace: namespace.toString('latin1'), reserved, hashAlgorithm: hashAlgorithm.toString('latin1'), algorithm: algorithm.toString('latin1'), signature };
}

/** ECDSA's `mpint r, mpint s` (RFC 5656 §3.1.2) as the fixed-width r||s Node verifies (IEEE P1363). */
function ecdsaP1363(signature: Buffer, coordinateBytes: number): Buffer | undefined {
  const reader = new SshWireReader(signature);
  const parts = [reader.string(), reader.string()];
  if (!reader.done) return undefined;
  const fixed: Buffer[] = [];
  for (const part of parts) {
    if (!part || part.length === 0) return undefined;
    const magnitude = part[0] === 0 ? part.subarray(1) : part;
    if (magnitude.length > coordinateBytes) return undefined;
    fixed.push(Buffer.concat([Buffer.alloc(coordinateBytes - magnitude.length), magnitude]));
  }
  return Buffer.concat(fixed);
}

/**
 * Verifies an armored SSHSIG over `message`: made in `namespace`, by `key` itself (its public key
 * blob equal to the key's), with an accepted hash and signature algorithm.
 */
export function verifySshSig(armored: string, message: Buffer, namespace: string, key: SshPublicKey): Result<void, InvalidSignatureError> {
  const blob = decodeArmor(armored);
  const sig = blob && parseSshSig(blob);
  if (!sig) return fail('the signature is not an SSH signature (ssh-keygen -Y sign output)');
  if (!sig.publicKey.equals(key.blob)) return fail('the signature was made by another key');
  if (sig.namespace !== namespace) return fail(`the signature was made for namespace ${JSON.stringify(sig.namespace)}, not ${namespace}`);
  if (sig.reserved.length !== 0) return fail('the signature has reserved data');
  const hash = HASHES[sig.hashAlgorithm as keyof typeof HASHES];
  if (!hash) return fail(`hash algorithm ${JSON.stringify(sig.hashAlgorithm)} is not accepted (sha256, sha512)`);
  const algorithm = SIGNATURE_ALGORITHMS[sig.algorithm];
  if (!algorithm) return fail(`signature algorithm ${JSON.stringify(sig.algorithm)} is not accepted${sig.algorithm === 'ssh-rsa' ? ' (SHA-1)' : ''}`);
  if (algorithm.keyType !== key.type) return fail(`a ${key.type} key does not make ${sig.algorithm} signatures`);
  const signed = Buffer.concat([MAGIC, sshString(namespace), sshString(sig.reserved), sshString(sig.hashAlgorithm), sshString(createHash(hash).update(message).digest())]);
  const coordinateBytes = EC_COORDINATE_BYTES[key.type];
  const signature = coordinateBytes ? ecdsaP1363(sig.signature, coordinateBytes) : sig.signature;
  if (!signature) return fail('the ECDSA signature is malformed');
  const keyObject = publicKeyObject(key);
  const valid = verify(algorithm.digest, signed, coordinateBytes ? { key: keyObject, dsaEncoding: 'ieee-p1363' } : keyObject, signature);
  return valid ? ok(undefined) : fail('the signature does not verify');
}

/** The key as Node's crypto takes it (the blob was validated by parsePublicKeyLine). */
function publicKeyObject(key: SshPublicKey): KeyObject {
  return createPublicKey({ key: publicKeyJwk(key), format: 'jwk' });
}
