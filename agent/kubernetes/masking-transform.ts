import { Transform, type TransformCallback } from 'node:stream';
import type { ResponseMasker } from '../../core/kubernetes/response-masking';
import { LIVE_IDLE_FLUSH_MS } from '../sessions/idle-flushed-masking';


/**
 * A response masker (core/kubernetes) as a stream stage: each chunk masked as it arrives (objects,
 * list items, watch events and log text pass one by one, never the whole body), and the stream
 * failed, so that the connection is cut, on anything the masker refuses mid-way.
 */
export class MaskingTransform extends Transform {
  private idle: NodeJS.Timeout | undefined;

  constructor(
    private readonly masker: ResponseMasker,
    private readonly flushWhenIdle: boolean,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const out = this.masker.push(chunk);
    if (!out.ok) return done(new Error(out.error.message));
    if (out.value) this.push(out.value);
    if (this.flushWhenIdle) {
      clearTimeout(this.idle);
      this.idle = setTimeout(() => {
        const held = this.masker.flush();
        if (held && !this.destroyed) this.push(held);
      }, LIVE_IDLE_FLUSH_MS);
    }
    done();
  }

  override _flush(done: TransformCallback): void {
    clearTimeout(this.idle);
    const out = this.masker.end();
    if (!out.ok) return done(new Error(out.error.message));
    done(null, out.value || undefined);
  }

  override _destroy(error: Error | null, done: (error: Error | null) => void): void {
    clearTimeout(this.idle);
    done(error);
  }
}
