import { SHORT_COPY } from './json-byte-buffer';

/**
 * A single-producer, single-consumer ring of records in shared memory: the proxy's thread appends
 * each recorded Postgres event as a few plain stores, and the recorder's worker thread reads them.
 * Nothing is allocated per record, and the proxy never waits on the worker unless the ring is full.
 *
 * Memory: two int32 indexes (where the writer will write next, where the reader will read next),
 * each on a cache line of its own, and the records' bytes. A record is `[u32 length, header
 * included][u8 kind][u32 slot][payload]`, always contiguous: one that does not fit before the end
 * starts again at 0, after a length of 0 (or fewer than 4 bytes left) that tells the reader to do the
 * same. The writer publishes a record by storing its end as the write index (Atomics: the record's
 * bytes are visible to the reader before it).
 *
 * Each side touches the other's index as little as it can (a line written by one core and read by
 * the other moves between their caches at each access, on every record the proxy writes): the writer
 * keeps the read index it last saw and loads it again only when that leaves too little room; the reader
 * loads the write index once per `read` and gives space back every RELEASE_BYTES, not per record.
 */
/** A cache line (64 bytes) and the adjacent one the CPU may fetch along with it. */
const LINE_PAIR_BYTES = 128;
/** The indexes' places in int32s: the read index a line pair after the write index. */
const WRITE = 0;
const READ = LINE_PAIR_BYTES / Int32Array.BYTES_PER_ELEMENT;
const INDEX_BYTES = 2 * LINE_PAIR_BYTES;
/** The reader gives space back to the writer at least this often (bytes read), so that a writer waiting on a full ring goes on before a long read ends. */
const RELEASE_BYTES = 64 * 1024;
/** A u32 value (a record's length, a slot, a count) and a whole number up to 2^53 (two u32). */
export const U32_BYTES = 4;
export const UINT_BYTES = 8;
/** Where a record's kind follows its length. */
export const LENGTH_BYTES = U32_BYTES;
/** length, kind, slot */
export const RECORD_HEADER_BYTES = LENGTH_BYTES + 1 + U32_BYTES;
const TWO_32 = 2 ** 32;
/** Numbers are stored least significant byte first, as RecordReader reads them. */
const LITTLE_ENDIAN = true;

export const newRingMemory = (bytes: number): SharedArrayBuffer => new SharedArrayBuffer(INDEX_BYTES + bytes);

/** Writes values at `at` in `buf` (a ring's bytes, or a buffer of its own for a record too large for the ring). */
export class RecordWriter {
  at = 0;
  /** The same bytes, for numbers written as one store each rather than byte by byte. */
  private readonly view: DataView;
  constructor(readonly buf: Buffer) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  u8(v: number): void {
    this.buf[this.at++] = v;
  }

  u32(v: number): void {
    this.view.setUint32(this.at, v, LITTLE_ENDIAN);
    this.at += U32_BYTES;
  }

  /** A non-negative whole number up to 2^53 (a time in ms, a count). */
  uint(v: number): void {
    const view = this.view;
    const at = this.at;
    view.setUint32(at, v % TWO_32, LITTLE_ENDIAN);
    view.setUint32(at + U32_BYTES, Math.floor(v / TWO_32), LITTLE_ENDIAN);
    this.at = at + UINT_BYTES;
  }

  /** `src[start..end)` as they are, to the record's end (the reader takes the rest of the record). */
  bytes(src: Uint8Array, start: number, end: number): void {
    const n = end - start;
    if (n > SHORT_COPY) this.buf.set(src.subarray(start, end), this.at);
    else for (let i = start, at = this.at; i < end; i++) this.buf[at++] = src[i] as number;
    this.at += n;
  }

  /** A string as its UTF-8 length and bytes: ASCII by a loop, anything else by the encoder. At most `utf8Max(s)` bytes. */
  str(s: string): void {
    const n = s.length;
    const b = this.buf;
    const lengthAt = this.at;
    let at = lengthAt + U32_BYTES;
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      b[at++] = c;
    }
    if (i < n) at = lengthAt + U32_BYTES + b.write(s, lengthAt + U32_BYTES, 'utf8');
    this.at = lengthAt;
    this.u32(at - lengthAt - U32_BYTES);
    this.at = at;
  }
}

/** Bytes a string can take in a record. */
export const utf8Max = (s: string): number => U32_BYTES + 3 * s.length;

/** Reads values from one record. */
export class RecordReader {
  at = 0;
  end = 0;
  constructor(public buf: Buffer) {}

  /** Places the reader after the length of the record at `at` and its end at the record's end; returns the length (0: the ring's wrap mark). */
  begin(at: number): number {
    this.at = at;
    const length = this.u32();
    this.end = at + length;
    return length;
  }

  u8(): number {
    return this.buf[this.at++] as number;
  }

  u32(): number {
    const b = this.buf;
    const at = this.at;
    this.at = at + U32_BYTES;
    return ((b[at] as number) | ((b[at + 1] as number) << 8) | ((b[at + 2] as number) << 16) | ((b[at + 3] as number) << 24)) >>> 0;
  }

  uint(): number {
    const lo = this.u32();
    return this.u32() * TWO_32 + lo;
  }

  /** A string's bytes, not decoded: where they start; `at` is left at their end. */
  span(): number {
    const n = this.u32();
    const at = this.at;
    this.at = at + n;
    return at;
  }

  str(): string {
    const n = this.u32();
    const at = this.at;
    this.at = at + n;
    return this.buf.toString('utf8', at, at + n);
  }
}

/** The proxy's side. */
export class RingWriter {
  private readonly index: Int32Array;
  private readonly capacity: number;
  /** Where the record being written began. */
  private start = 0;
  /** The read index as last loaded: behind the reader's or equal to it, so the room it shows is there. */
  private readSeen = 0;
  readonly out: RecordWriter;

  constructor(memory: SharedArrayBuffer) {
    this.index = new Int32Array(memory, 0, INDEX_BYTES / Int32Array.BYTES_PER_ELEMENT);
    this.capacity = memory.byteLength - INDEX_BYTES;
    this.out = new RecordWriter(Buffer.from(memory, INDEX_BYTES, this.capacity));
    this.start = Atomics.load(this.index, WRITE);
    this.readSeen = Atomics.load(this.index, READ);
  }

  /** The largest record the ring takes; larger ones go another way (see the recorder). */
  get maxRecord(): number {
    return this.capacity >> 2;
  }

  /**
   * Opens a record of at most `max` bytes (header included, at most `maxRecord`) and writes its kind
   * and slot; then the payload through `out`, then `close()`. False when the reader left no room for
   * `waitMs`: the record is not written.
   */
  open(kind: number, slot: number, max: number, waitMs: number): boolean {
    const at = this.room(max, waitMs);
    if (at < 0) return false;
    this.start = at;
    const out = this.out;
    out.at = at + LENGTH_BYTES;
    out.u8(kind);
    out.u32(slot);
    return true;
  }

  close(): void {
    const out = this.out;
    const end = out.at;
    out.at = this.start;
    out.u32(end - this.start);
    out.at = end;
    this.start = end;
    Atomics.store(this.index, WRITE, end);
  }

  /** Where `max` contiguous bytes can be written (a wrap marked if need be), waiting for the reader up to `waitMs`; -1 if it did not make room. */
  private room(max: number, waitMs: number): number {
    const w = this.start;
    let r = this.readSeen;
    let deadline = 0;
    for (;;) {
      // The writer never catches up with the reader (equal indexes mean empty): one byte stays free.
      if (w >= r) {
        if (this.capacity - w - (r === 0 ? 1 : 0) >= max) return w;
        if (r - 1 >= max) {
          if (this.capacity - w >= LENGTH_BYTES) {
            this.out.at = w;
            this.out.u32(0);
          }
          // Published with the record that follows, at 0.
          return 0;
        }
      } else if (r - w - 1 >= max) return w;
      const fresh = Atomics.load(this.index, READ);
      if (fresh !== r) {
        r = this.readSeen = fresh;
        continue;
      }
      // Full: the clock is read only now, off the usual path.
      if (deadline === 0) deadline = Date.now() + waitMs;
      const left = deadline - Date.now();
      if (left <= 0) return -1;
      Atomics.wait(this.index, READ, r, left);
      r = this.readSeen = Atomics.load(this.index, READ);
    }
  }
}

/** The worker's side. */
export class RingReader {
  private readonly index: Int32Array;
  private readonly capacity: number;
  readonly record: RecordReader;

  constructor(memory: SharedArrayBuffer) {
    this.index = new Int32Array(memory, 0, INDEX_BYTES / Int32Array.BYTES_PER_ELEMENT);
    this.capacity = memory.byteLength - INDEX_BYTES;
    this.record = new RecordReader(Buffer.from(memory, INDEX_BYTES, this.capacity));
  }

  /**
   * Calls `each(kind, slot, record)` for every record published so far, in order, the reader placed at
   * the payload and `record.end` at the record's end. `each` returns false to stop before the record
   * (it is read again at the next call). The space read is given back to the writer every RELEASE_BYTES
   * and at the end. Returns how many records were read.
   */
  read(each: (kind: number, slot: number, record: RecordReader) => boolean): number {
    const rec = this.record;
    let r = Atomics.load(this.index, READ);
    const w = Atomics.load(this.index, WRITE);
    let unreleased = 0;
    let count = 0;
    while (r !== w) {
      if (this.capacity - r < LENGTH_BYTES) {
        r = 0;
        continue;
      }
      const length = rec.begin(r);
      if (length === 0) {
        r = 0;
        continue;
      }
      const kind = rec.u8();
      const slot = rec.u32();
      if (!each(kind, slot, rec)) break;
      count++;
      r += length;
      unreleased += length;
      if (unreleased >= RELEASE_BYTES) {
        unreleased = 0;
        Atomics.store(this.index, READ, r);
        Atomics.notify(this.index, READ);
      }
    }
    Atomics.store(this.index, READ, r);
    // A writer waiting for room wakes up.
    Atomics.notify(this.index, READ);
    return count;
  }
}
