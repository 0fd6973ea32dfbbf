import { createHash, generateKeyPairSync, randomBytes, randomUUID, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AwsApiError, operationOf, readJsonBody, sendAwsError, sendAwsJson } from '../../local/aws/json-protocol';

/**
 * A KMS stand-in for the two calls the token signer makes (GetPublicKey, Sign), as strict as KMS about
 * what it refuses: unsigned requests, unknown keys, a key whose usage or spec does not fit the
 * algorithm (InvalidKeyUsageException), a DIGEST that is not one SHA-256 long, a RAW message over
 * 4096 bytes. Signatures are ECDSA P-256, DER-encoded, as KMS returns them.
 */
export interface StandInKey {
  readonly keyId: string;
  readonly arn: string;
  readonly publicKey: KeyObject;
}

type KeySpec = 'ECC_NIST_P256' | 'RSA_2048';
type KeyUsage = 'SIGN_VERIFY' | 'ENCRYPT_DECRYPT';

const SIGNING_ALGORITHMS: Record<KeySpec, string[]> = {
  ECC_NIST_P256: ['ECDSA_SHA_256'],
  RSA_2048: ['RSASSA_PSS_SHA_256', 'RSASSA_PKCS1_V1_5_SHA_256'],
};
const MAX_RAW_MESSAGE_BYTES = 4096;
const SHA256_BYTES = 32;

interface Held {
  readonly spec: KeySpec;
  readonly usage: KeyUsage;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly arn: string;
}

export class KmsStandIn {
  private readonly keys = new Map<string, Held>();
  private server: Server | undefined;
  /** Sign calls served, for tests that count them. */
  signCalls = 0;

  addKey(spec: KeySpec = 'ECC_NIST_P256', usage: KeyUsage = 'SIGN_VERIFY'): StandInKey {
    const pair = spec === 'ECC_NIST_P256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('rsa', { modulusLength: 2048 });
    const keyId = randomUUID();
    const arn = `arn:aws:kms:us-east-1:000000000000:key/${keyId}`;
    this.keys.set(keyId, { spec, usage, privateKey: pair.privateKey, publicKey: pair.publicKey, arn });
    return { keyId, arn, publicKey: pair.publicKey };
  }

  async start(host = '127.0.0.1'): Promise<string> {
    this.server = createServer((req, res) => void this.serve(req, res));
    await new Promise<void>((resolve) => this.server?.listen(0, host, resolve));
    return `http://${host}:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const auth = String(req.headers.authorization ?? '');
      if (!/^AWS4-HMAC-SHA256 Credential=[^/]+\/\d{8}\/[\w-]+\/kms\/aws4_request, SignedHeaders=[^,]+, Signature=[0-9a-f]{64}$/.test(auth)) {
        throw new AwsApiError(400, 'MissingAuthenticationTokenException', 'Request is missing Authentication Token');
      }
      const body = await readJsonBody(req);
      const key = this.find(body.KeyId);
      const operation = operationOf(req);
      if (operation === 'GetPublicKey') {
        if (key.usage !== 'SIGN_VERIFY') throw new AwsApiError(400, 'UnsupportedOperationException', 'GetPublicKey of a symmetric key');
        const der = key.publicKey.export({ format: 'der', type: 'spki' });
        return sendAwsJson(res, { KeyId: key.arn, KeySpec: key.spec, KeyUsage: key.usage, PublicKey: der.toString('base64'), SigningAlgorithms: SIGNING_ALGORITHMS[key.spec] }, 'application/x-amz-json-1.1');
      }
      if (operation !== 'Sign') throw new AwsApiError(400, 'UnknownOperationException', `${operation} is not available in this stand-in`);
      return sendAwsJson(res, { KeyId: key.arn, Signature: this.sign(key, body).toString('base64'), SigningAlgorithm: body.SigningAlgorithm }, 'application/x-amz-json-1.1');
    } catch (e) {
      sendAwsError(res, e);
    }
  }

  private find(keyId: unknown): Held {
    const id = String(keyId ?? '');
    const key = this.keys.get(id) ?? [...this.keys.values()].find((k) => k.arn === id);
    if (!key) throw new AwsApiError(400, 'NotFoundException', `Key '${id}' does not exist`);
    return key;
  }

  private sign(key: Held, body: Record<string, unknown>): Buffer {
    this.signCalls++;
    const algorithm = String(body.SigningAlgorithm ?? '');
    if (key.usage !== 'SIGN_VERIFY' || !SIGNING_ALGORITHMS[key.spec].includes(algorithm)) {
      throw new AwsApiError(400, 'InvalidKeyUsageException', `${algorithm} is not valid for this key (${key.spec}, ${key.usage})`);
    }
    if (key.spec !== 'ECC_NIST_P256') throw new AwsApiError(400, 'UnsupportedOperationException', 'this stand-in signs with EC keys only');
    const message = Buffer.from(String(body.Message ?? ''), 'base64');
    const type = body.MessageType ?? 'RAW';
    if (type === 'DIGEST' && message.length !== SHA256_BYTES) throw new AwsApiError(400, 'ValidationException', 'Digest is invalid length for algorithm ECDSA_SHA_256');
    if (type === 'RAW' && (message.length === 0 || message.length > MAX_RAW_MESSAGE_BYTES)) throw new AwsApiError(400, 'ValidationException', 'Message must be 1 to 4096 bytes');
    if (type !== 'DIGEST' && type !== 'RAW') throw new AwsApiError(400, 'ValidationException', 'MessageType must be RAW or DIGEST');
    const digest = type === 'RAW' ? createHash('sha256').update(message).digest() : message;
    return ecdsaP256SignDigest(key.privateKey, digest);
  }
}

// ECDSA over P-256 on a digest as given (SEC 1 §4.1.3): Node signs only messages it hashes itself,
// and KMS's DIGEST message type signs the digest the caller computed.
const P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
const A = P - 3n;
const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const G: Point = [0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296n, 0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5n];
type Point = readonly [bigint, bigint] | undefined;

const mod = (a: bigint, m: bigint): bigint => ((a % m) + m) % m;
function inverse(a: bigint, m: bigint): bigint {
  let [r0, r1, s0, s1] = [mod(a, m), m, 1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1, s0, s1] = [r1, r0 - q * r1, s1, s0 - q * s1];
  }
  return mod(s0, m);
}
function add(p: Point, q: Point): Point {
  if (!p) return q;
  if (!q) return p;
  if (p[0] === q[0] && mod(p[1] + q[1], P) === 0n) return undefined;
  const slope = p[0] === q[0] ? mod((3n * p[0] * p[0] + A) * inverse(2n * p[1], P), P) : mod((q[1] - p[1]) * inverse(q[0] - p[0], P), P);
  const x = mod(slope * slope - p[0] - q[0], P);
  return [x, mod(slope * (p[0] - x) - p[1], P)];
}
function multiply(k: bigint, point: Point): Point {
  let result: Point;
  let addend = point;
  for (let n = k; n > 0n; n >>= 1n) {
    if (n & 1n) result = add(result, addend);
    addend = add(addend, addend);
  }
  return result;
}
const toBigInt = (bytes: Buffer): bigint => BigInt(`0x${bytes.toString('hex') || '0'}`);
function derInteger(n: bigint): Buffer {
  let hex = n.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let bytes = Buffer.from(hex, 'hex');
  if ((bytes[0] ?? 0) & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return Buffer.concat([Buffer.from([0x02, bytes.length]), bytes]);
}

function ecdsaP256SignDigest(privateKey: KeyObject, digest: Buffer): Buffer {
  const d = toBigInt(Buffer.from(String(privateKey.export({ format: 'jwk' }).d), 'base64url'));
  const z = toBigInt(digest);
  for (;;) {
    const k = mod(toBigInt(randomBytes(40)), N - 1n) + 1n;
    const r = mod((multiply(k, G) as readonly [bigint, bigint])[0], N);
    const s = mod(inverse(k, N) * (z + r * d), N);
    if (r === 0n || s === 0n) continue;
    const body = Buffer.concat([derInteger(r), derInteger(s)]);
    return Buffer.concat([Buffer.from([0x30, body.length]), body]);
  }
}
