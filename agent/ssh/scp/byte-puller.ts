import type { Readable } from 'node:stream';

/**
 * Reads a stream on demand (a line, a byte, up to N bytes) for a protocol that answers each message
 * before the peer sends the next (scp). At most `highWaterBytes` wait in memory: past that the stream
 * is paused until they are taken. Reads return undefined once the stream has ended and nothing is left.
 */
export class BytePuller {
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private ended = false;
  private wake: (() => void) | undefined;

  constructor(
    private readonly from: Readable,
    private readonly highWaterBytes: number,
  ) {
    from.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      if (this.buffered >= this.highWaterBytes) from.pause();
      this.notify();
    });
    const end = (): void => {
      this.ended = true;
      this.notify();
    };
    from.once('end', end);
    from.once('close', end);
  }

  /** One byte. */
  async byte(): Promise<number | undefined> {
    const taken = await this.take(1);
    return taken?.[0];
  }

  /** Up to `maxBytes` (at least one) of what has arrived. */
  async take(maxBytes: number): Promise<Buffer | undefined> {
    if (!(await this.available())) return undefined;
    const first = this.chunks[0] as Buffer;
    const taken = first.subarray(0, maxBytes);
    if (taken.length === first.length) this.chunks.shift();
    else this.chunks[0] = first.subarray(taken.length);
    this.consumed(taken.length);
    return taken;
  }

  /** A line without its `\n`; `too-long` when no `\n` comes within `maxBytes`. */
  async line(maxBytes: number): Promise<Buffer | 'too-long' | undefined> {
    const parts: Buffer[] = [];
    let length = 0;
    for (;;) {
      if (!(await this.available())) return undefined;
      const first = this.chunks[0] as Buffer;
      const newline = first.indexOf(0x0a);
      const end = newline < 0 ? first.length : newline;
      if (length + end > maxBytes) return 'too-long';
      parts.push(first.subarray(0, end));
      length += end;
      const used = newline < 0 ? end : end + 1;
      if (used === first.length) this.chunks.shift();
      else this.chunks[0] = first.subarray(used);
      this.consumed(used);
      if (newline >= 0) return Buffer.concat(parts);
    }
  }

  private async available(): Promise<boolean> {
    while (this.chunks.length === 0) {
      if (this.ended) return false;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    return true;
  }

  private consumed(bytes: number): void {
    this.buffered -= bytes;
    if (this.buffered < this.highWaterBytes && this.from.isPaused()) this.from.resume();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
