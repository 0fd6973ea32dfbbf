import { GetObjectCommand, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/aws/credentials';
import { startLocalS3, type LocalS3 } from '../../local/aws/s3';
import { OBJECT_LOCK_CHECKSUM_REQUIRED } from '../../local/aws/strict-s3';

const sha256 = (body: Buffer | string): string => createHash('sha256').update(body).digest('base64');

/** The S3 stand-in answers as S3 does for a bucket with Object Lock and for presigned URLs. */
describe('local S3 stand-in (s3rver behind the strict front)', () => {
  let s3: LocalS3;
  let client: S3Client;

  beforeAll(async () => {
    s3 = await startLocalS3({ directory: mkdtempSync(join(tmpdir(), 'tk-s3-')), port: 0, host: '127.0.0.1' });
    client = new S3Client({
      endpoint: s3.endpoint,
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
      forcePathStyle: true,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  });
  afterAll(async () => {
    client.destroy();
    await s3.stop();
  });

  const failure = async (work: Promise<unknown>): Promise<{ status: number | undefined; code: string; message: string }> => {
    try {
      await work;
    } catch (e) {
      if (e instanceof S3ServiceException) return { status: e.$metadata.httpStatusCode, code: e.name, message: e.message };
      throw e;
    }
    throw new Error('the request succeeded');
  };
  const presignPut = (key: string, body: Buffer) =>
    getSignedUrl(client, new PutObjectCommand({ Bucket: s3.bucket, Key: key, ContentLength: body.length, ChecksumSHA256: sha256(body) }), {
      expiresIn: 60,
      unhoistableHeaders: new Set(['x-amz-checksum-sha256']),
    });
  const errorCode = async (res: Response): Promise<string> => /<Code>([^<]+)<\/Code>/.exec(await res.text())?.[1] ?? '';

  it('refuses a PUT into the Object Lock bucket that carries neither Content-MD5 nor a checksum, as S3 does', async () => {
    const refused = await failure(client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'recordings/a', Body: 'x' })));
    expect(refused).toEqual({ status: 400, code: 'InvalidRequest', message: OBJECT_LOCK_CHECKSUM_REQUIRED });
    expect(OBJECT_LOCK_CHECKSUM_REQUIRED).toBe('Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters');
  });

  it('checks a checksum against the body and stores the object when it matches', async () => {
    const bad = await failure(client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'recordings/b', Body: 'body', ChecksumSHA256: sha256('other') })));
    expect(bad).toMatchObject({ status: 400, code: 'BadDigest' });
    const badMd5 = await failure(client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'recordings/b', Body: 'body', ContentMD5: createHash('md5').update('other').digest('base64') })));
    expect(badMd5).toMatchObject({ status: 400, code: 'BadDigest' });
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'recordings/b', Body: 'body', ChecksumSHA256: sha256('body') }));
    const got = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: 'recordings/b' }));
    expect(await got.Body?.transformToString()).toBe('body');
  });

  it('stores nothing over an existing key for a conditional write (If-None-Match: *)', async () => {
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'recordings/once', Body: 'first', ChecksumSHA256: sha256('first'), IfNoneMatch: '*' }));
    const again = await failure(client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'recordings/once', Body: 'second', ChecksumSHA256: sha256('second'), IfNoneMatch: '*' })));
    expect(again).toMatchObject({ status: 412, code: 'PreconditionFailed' });
    const got = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: 'recordings/once' }));
    expect(await got.Body?.transformToString()).toBe('first');
  });

  it('takes through a presigned URL exactly the length and bytes signed into it', async () => {
    const body = Buffer.from('the signed chunk');
    const url = await presignPut('recordings/c', body);
    const put = (data: Buffer, headers: Record<string, string>) => fetch(url, { method: 'PUT', body: new Uint8Array(data), headers });

    const longer = await put(Buffer.concat([body, Buffer.from(' and more')]), { 'x-amz-checksum-sha256': sha256(body) });
    expect([longer.status, await errorCode(longer)]).toEqual([403, 'SignatureDoesNotMatch']);
    const unchecked = await put(body, {});
    expect([unchecked.status, await errorCode(unchecked)]).toEqual([403, 'SignatureDoesNotMatch']);
    const otherBytes = Buffer.from('the forged chunk');
    const forged = await put(otherBytes, { 'x-amz-checksum-sha256': sha256(body) });
    expect([forged.status, await errorCode(forged)]).toEqual([400, 'BadDigest']);

    const stored = await put(body, { 'x-amz-checksum-sha256': sha256(body) });
    expect(stored.status).toBe(200);
    const got = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: 'recordings/c' }));
    expect(await got.Body?.transformToString()).toBe('the signed chunk');
  });

  it('refuses a presigned URL whose key or signature was altered', async () => {
    const body = Buffer.from('x');
    const url = new URL(await presignPut('recordings/d', body));
    const moved = new URL(url);
    moved.pathname = moved.pathname.replace('/d', '/e');
    const res = await fetch(moved, { method: 'PUT', body: new Uint8Array(body), headers: { 'x-amz-checksum-sha256': sha256(body) } });
    expect([res.status, await errorCode(res)]).toEqual([403, 'SignatureDoesNotMatch']);
  });
});
