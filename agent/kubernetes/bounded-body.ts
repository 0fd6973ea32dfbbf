import type { Readable } from 'node:stream';

/** A body must arrive within this long once its headers have. */
export const BODY_TIMEOUT_MS = 30_000;

export type BoundedBody = { readonly ok: true; readonly value: Buffer } | { readonly ok: false; readonly tooLarge: boolean; readonly reason: string };

/** Reads a whole body of at most `limit` bytes within BODY_TIMEOUT_MS; past either, the stream is dropped. */
export function readBounded(stream: Readable, limit: number): Promise<BoundedBody> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (result: BoundedBody): void => {
      clearTimeout(timer);
      stream.off('data', onData);
      resolve(result);
    };
    const timer = setTimeout(() => {
      stream.destroy();
      finish({ ok: false, tooLarge: false, reason: `the body did not arrive within ${BODY_TIMEOUT_MS / 1000}s` });
    }, BODY_TIMEOUT_MS);
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        stream.pause();
        finish({ ok: false, tooLarge: true, reason: `the body is over ${limit} bytes` });
        return;
      }
      chunks.push(chunk);
    };
    stream.on('data', onData);
    stream.once('end', () => finish({ ok: true, value: Buffer.concat(chunks) }));
    stream.once('error', (e) => finish({ ok: false, tooLarge: false, reason: e.message }));
  });
}
