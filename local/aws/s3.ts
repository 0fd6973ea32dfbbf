import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import S3rver from 's3rver';
import { LOCAL_CREDENTIALS } from './credentials';
import { createStrictS3 } from './strict-s3';

export interface LocalS3 {
  readonly endpoint: string;
  readonly bucket: string;
  /** Where s3rver keeps the objects (one file per object below its key). */
  readonly directory: string;
  stop(): Promise<void>;
}

export const LOCAL_RECORDINGS_BUCKET = 'twokey-recordings';

/**
 * s3rver with the recordings bucket, files under `directory`, behind the strict front that checks
 * what AWS would (presigned signatures, checksums, Object Lock's checksum rule: the stack gives the
 * recordings bucket Object Lock, so the local one is treated as having it too).
 */
export async function startLocalS3(options: { directory: string; port: number; host: string }): Promise<LocalS3> {
  const s3rver = new S3rver({
    address: '127.0.0.1',
    port: 0,
    directory: options.directory,
    silent: true,
    configureBuckets: [{ name: LOCAL_RECORDINGS_BUCKET, configs: [] }],
  });
  const upstream = (await s3rver.run()) as AddressInfo;
  const front: Server = createStrictS3({
    upstream: { host: '127.0.0.1', port: upstream.port },
    objectLockBuckets: new Set([LOCAL_RECORDINGS_BUCKET]),
    secretAccessKey: LOCAL_CREDENTIALS.secretAccessKey,
  });
  try {
    await new Promise<void>((resolve, reject) => {
      front.once('error', reject);
      front.listen(options.port, options.host, () => resolve());
    });
  } catch (e) {
    await s3rver.close();
    throw e;
  }
  const { port } = front.address() as AddressInfo;
  let stopped: Promise<void> | undefined;
  return {
    endpoint: `http://${options.host}:${port}`,
    bucket: LOCAL_RECORDINGS_BUCKET,
    directory: options.directory,
    stop: () =>
      (stopped ??= (async () => {
        front.closeAllConnections();
        await new Promise<void>((resolve) => front.close(() => resolve()));
        await s3rver.close();
      })()),
  };
}
