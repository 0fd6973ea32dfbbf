import type { AddressInfo } from 'node:net';
import S3rver from 's3rver';

export interface LocalS3 {
  readonly endpoint: string;
  readonly bucket: string;
  /** Where s3rver keeps the objects (one file per object below its key). */
  readonly directory: string;
  stop(): Promise<void>;
}

export const LOCAL_RECORDINGS_BUCKET = 'twokey-recordings';

/** s3rver with the recordings bucket, files under `directory`. */
export async function startLocalS3(options: { directory: string; port: number; host: string }): Promise<LocalS3> {
  const server = new S3rver({
    address: options.host,
    port: options.port,
    directory: options.directory,
    silent: true,
    configureBuckets: [{ name: LOCAL_RECORDINGS_BUCKET, configs: [] }],
  });
  const address = (await server.run()) as AddressInfo;
  let stopped: Promise<void> | undefined;
  return {
    endpoint: `http://${options.host}:${address.port}`,
    bucket: LOCAL_RECORDINGS_BUCKET,
    directory: options.directory,
    stop: () => (stopped ??= server.close()),
  };
}
