/** The size of one read from the database (what libuv asks for by default). */
export const READ_BUFFER_BYTES = 64 * 1024;
/** Read buffers kept for reuse; a read while all are taken gets a fresh one. */
const MAX_POOLED_READ_BUFFERS = 4;
/** Buffers kept while client writes still hold their bytes; past this, left to the collector. */
const MAX_HELD_READ_BUFFERS = 16;

/**
 * Buffers a database socket reads into (Node's `onread`), reused once nothing holds the bytes of the
 * last read. Node reads into a fresh buffer each time by default, and a streamed result then piles up
 * freed buffers as memory the C allocator keeps. `reusable` says whether nothing holds the bytes of
 * earlier reads any more (no client write waiting for its socket); until it does, their buffers wait.
 */
export class ReadBuffers {
  private readonly pool: Buffer[] = [];
  private readonly held: Buffer[] = [];
  private current: Buffer | undefined;

  constructor(private readonly reusable: () => boolean = () => false) {}

  /** The buffer the next read goes into (Node's `onread.buffer`, asked for before each read). */
  readonly next = (): Buffer => (this.current = this.pool.pop() ?? Buffer.allocUnsafe(READ_BUFFER_BYTES));

  /**
   * One read of `bytes` into `into` (Node's `onread.callback`): handed to `emit`, then its buffer kept
   * for the next read when nothing holds its bytes any more.
   */
  read(into: Uint8Array, bytes: number, emit: (chunk: Buffer) => void): void {
    const buf = this.current;
    if (!buf || into !== buf) return emit(Buffer.from(into.subarray(0, bytes)));
    this.current = undefined;
    emit(buf.subarray(0, bytes));
    if (!this.reusable()) {
      if (this.held.length < MAX_HELD_READ_BUFFERS) this.held.push(buf);
      return;
    }
    // Writes complete in order: none of the held buffers is referenced any more either.
    for (const b of this.held) this.keep(b);
    this.held.length = 0;
    this.keep(buf);
  }

  private keep(buf: Buffer): void {
    if (this.pool.length < MAX_POOLED_READ_BUFFERS) this.pool.push(buf);
  }
}
