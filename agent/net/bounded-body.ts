import type { IncomingMessage } from 'node:http';

/** A body must arrive within this long once its headers have. */
export const BODY_TIMEOUT_MS = 30_000;

export type BoundedBody = { readonly ok: true; readonly value: Buffer } | { readonly ok: false; readonly tooLarge: boolean; readonly reason: string };

/**
 * Reads a whole HTTP body (a request's, or an upstream response's) of at most `limit` bytes within
 * BODY_TIMEOUT_MS. A declared Content-Length over the limit is refused before a byte is read; past the
 * limit the message is paused, past the time it is dropped. Callers turn a refusal into their protocol's answer.
 */
export function readBounded(message: IncomingMessage, limit: number): Promise<BoundedBody> {
  const tooLarge: BoundedBody = { ok: false, tooLarge: true, reason: `the body is over ${limit} bytes` };
  if (Number(message.headers['content-length'] ?? 0) > limit) return Promise.resolve(tooLarge);
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (result: BoundedBody): void => {
      clearTimeout(timer);
      message.off('data', onData);
      resolve(result);
    };
    const timer = setTimeout(() => {
      message.destroy();
      finish({ ok: false, tooLarge: false, reason: `the body did not arrive within ${BODY_TIMEOUT_MS / 1000}s` });
    }, BODY_TIMEOUT_MS);
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        message.pause();
        finish(tooLarge);
        return;
      }
      chunks.push(chunk);
    };
    message.on('data', onData);
    message.once('end', () => finish({ ok: true, value: Buffer.concat(chunks) }));
    message.once('error', (e) => finish({ ok: false, tooLarge: false, reason: e.message }));
  });
}
