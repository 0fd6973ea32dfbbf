import { READ_BUFFER_BYTES, ReadBuffers } from '../../../agent/postgres/upstream/read-buffers';

/** One read as Node's onread makes it: ask for a buffer, fill `text` into it, call back. */
function read(reads: ReadBuffers, text: string): { buf: Buffer; chunk: string } {
  const buf = reads.next();
  buf.write(text, 0, 'latin1');
  let chunk = '';
  reads.read(buf, text.length, (c) => {
    chunk = c.toString('latin1');
  });
  return { buf, chunk };
}

describe('upstream read buffers', () => {
  it('reads into the same memory again once nothing holds the last read', () => {
    const reads = new ReadBuffers(() => true);
    const first = read(reads, 'first');
    const second = read(reads, 'second');
    expect([first.chunk, second.chunk]).toEqual(['first', 'second']);
    expect(second.buf).toBe(first.buf);
    expect(first.buf.length).toBe(READ_BUFFER_BYTES);
  });

  it('leaves a buffer whose bytes a pending write still holds, and reads into another', () => {
    let pending = true;
    const reads = new ReadBuffers(() => !pending);
    const first = read(reads, 'first');
    const second = read(reads, 'second');
    expect(second.buf).not.toBe(first.buf);
    expect(first.buf.toString('latin1', 0, 5)).toBe('first');
    // Once the writes are done, the buffers they held serve later reads.
    pending = false;
    const third = read(reads, 'third');
    expect(third.buf).not.toBe(first.buf);
    expect([first.buf, second.buf, third.buf]).toContain(read(reads, 'fourth').buf);
  });
});
