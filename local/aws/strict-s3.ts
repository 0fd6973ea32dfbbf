import { createHash, randomBytes } from 'node:crypto';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { crc32 } from 'node:zlib';
import { checkPresigned, isPresigned } from './sigv4-query';

/**
 * What S3 checks and s3rver does not, in front of s3rver: presigned URLs are verified (signature,
 * expiry, and so every header signed into them: a length, a checksum), any checksum a PUT names is
 * checked against the body, and a PUT of an object into an Object Lock bucket must name one, as
 * AWS requires ("Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests
 * with Object Lock parameters"). Everything that passes goes on to s3rver unchanged.
 */
export interface StrictS3Options {
  /** s3rver's address, on loopback. */
  readonly upstream: { host: string; port: number };
  /** Buckets that, in AWS, have Object Lock with a default retention (the recordings bucket). */
  readonly objectLockBuckets: ReadonlySet<string>;
  readonly secretAccessKey: string;
  readonly now?: () => Date;
}

/** The stand-in holds a request body in memory before passing it on: larger ones are refused. */
export const MAX_LOCAL_PUT_BYTES = 64 * 1024 * 1024;

export const OBJECT_LOCK_CHECKSUM_REQUIRED = 'Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters';

class S3Error extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

type Digest = (body: Buffer) => string;
const hashB64 =
  (algorithm: string): Digest =>
  (body) =>
    createHash(algorithm).update(body).digest('base64');

/** The checksums S3 reads from headers, and how each is computed (base64 of the big-endian value). */
const CHECKSUMS: Record<string, { name: string; digest: Digest } | undefined> = {
  'content-md5': { name: 'Content-MD5', digest: hashB64('md5') },
  'x-amz-checksum-sha256': { name: 'SHA256', digest: hashB64('sha256') },
  'x-amz-checksum-sha1': { name: 'SHA1', digest: hashB64('sha1') },
  'x-amz-checksum-crc32': {
    name: 'CRC32',
    digest: (body) => {
      const value = Buffer.alloc(4);
      value.writeUInt32BE(crc32(body));
      return value.toString('base64');
    },
  },
};

/** Checks one PUT's checksum headers against its body; throws the error S3 answers with. */
export function checkPutChecksums(headers: IncomingMessage['headers'], body: Buffer, objectLock: boolean): void {
  if (headers['x-amz-trailer'] !== undefined) {
    throw new S3Error(501, 'NotImplemented', 'the local S3 stand-in does not read trailing checksums (aws-chunked bodies): set requestChecksumCalculation to WHEN_REQUIRED');
  }
  const named = Object.keys(headers).filter((h) => h === 'content-md5' || h.startsWith('x-amz-checksum-'));
  if (objectLock && named.length === 0) throw new S3Error(400, 'InvalidRequest', OBJECT_LOCK_CHECKSUM_REQUIRED);
  for (const header of named) {
    const check = CHECKSUMS[header];
    if (!check) throw new S3Error(501, 'NotImplemented', `the local S3 stand-in does not compute ${header}`);
    const given = String(headers[header]);
    if (given !== check.digest(body)) {
      const message = header === 'content-md5' ? 'The Content-MD5 you specified did not match what we received.' : `The ${check.name} you specified did not match the calculated checksum.`;
      throw new S3Error(400, 'BadDigest', message);
    }
  }
}

function sendError(res: ServerResponse, e: S3Error): void {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${e.code}</Code><Message>${e.message}</Message><RequestId>${randomBytes(8).toString('hex').toUpperCase()}</RequestId></Error>`;
  res.writeHead(e.status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_LOCAL_PUT_BYTES) throw new S3Error(400, 'EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size');
  const parts: Buffer[] = [];
  let size = 0;
  for await (const part of req as AsyncIterable<Buffer>) {
    size += part.length;
    if (size > MAX_LOCAL_PUT_BYTES) throw new S3Error(400, 'EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size');
    parts.push(part);
  }
  return Buffer.concat(parts);
}

/** Path-style addressing (`/bucket/key`), as local mode configures every S3 client. */
function bucketAndKey(rawPath: string): { bucket: string; key: string } {
  const [, bucket = '', ...key] = rawPath.split('/');
  return { bucket: decodeURIComponent(bucket), key: decodeURIComponent(key.join('/')) };
}

function upstreamStatus(options: StrictS3Options, method: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = request({ ...options.upstream, method, path }, (up) => {
      up.resume();
      resolve(up.statusCode ?? 502);
    });
    probe.on('error', reject);
    probe.end();
  });
}

async function handle(req: IncomingMessage, res: ServerResponse, options: StrictS3Options): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://local');
  const rawPath = (req.url ?? '/').split('?')[0] ?? '/';
  if (isPresigned(url.searchParams)) {
    const checked = checkPresigned({ method: req.method ?? 'GET', rawPath, query: url.searchParams, headers: req.headers }, options.secretAccessKey, (options.now ?? (() => new Date()))());
    if (!checked.ok) throw new S3Error(checked.code === 'AuthorizationQueryParametersError' ? 400 : 403, checked.code, checked.message);
  }
  const body = await readBody(req);
  const { bucket, key } = bucketAndKey(rawPath);
  if (req.method === 'PUT' && key !== '') {
    checkPutChecksums(req.headers, body, options.objectLockBuckets.has(bucket));
    // S3's conditional write: `If-None-Match: *` stores nothing over an existing key.
    if (req.headers['if-none-match'] === '*' && (await upstreamStatus(options, 'HEAD', rawPath)) === 200) {
      throw new S3Error(412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold');
    }
  }
  await new Promise<void>((resolve, reject) => {
    const upstream = request({ ...options.upstream, method: req.method, path: req.url, headers: { ...req.headers, 'content-length': String(body.length) } }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
      up.on('end', resolve);
      up.on('error', reject);
    });
    upstream.on('error', reject);
    upstream.end(body);
  });
}

export function createStrictS3(options: StrictS3Options): Server {
  return createServer((req, res) => {
    handle(req, res, options).catch((e: unknown) => {
      if (res.headersSent) return void res.destroy();
      // A refused upload's body is read and dropped, as S3 does, so that the client reads the answer.
      req.resume();
      sendError(res, e instanceof S3Error ? e : new S3Error(502, 'ServiceUnavailable', 'the local S3 stand-in could not reach s3rver'));
    });
  });
}
