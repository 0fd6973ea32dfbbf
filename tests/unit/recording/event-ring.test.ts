import { newRingMemory, RECORD_HEADER_BYTES, RingReader, RingWriter, utf8Max } from '../../../agent/recording/event-ring';

/** Reads every record published so far as [kind, slot, text]. */
function readAll(reader: RingReader, stopAt?: number): [number, number, string][] {
  const got: [number, number, string][] = [];
  reader.read((kind, slot, r) => {
    if (kind === stopAt) return false;
    got.push([kind, slot, r.str()]);
    return true;
  });
  return got;
}

function write(writer: RingWriter, kind: number, slot: number, text: string, waitMs = 0): boolean {
  if (!writer.open(kind, slot, RECORD_HEADER_BYTES + utf8Max(text), waitMs)) return false;
  writer.out.str(text);
  writer.close();
  return true;
}

describe('event ring', () => {
  it('hands records over in order across many wraps of the ring, with any sizes', () => {
    const memory = newRingMemory(1024);
    const writer = new RingWriter(memory);
    const reader = new RingReader(memory);
    const sent: [number, number, string][] = [];
    const received: [number, number, string][] = [];
    // Sizes from empty to the largest record (its reservation: 3 bytes a character), so that records end at every offset of the ring.
    const longest = Math.floor((writer.maxRecord - RECORD_HEADER_BYTES - 4) / 3) - 1;
    for (let i = 0; i < 2000; i++) {
      const text = 'x'.repeat((i * 37) % longest) + (i % 7 === 0 ? 'é' : '');
      const record: [number, number, string] = [1 + (i % 5), i, text];
      if (!write(writer, ...record)) {
        received.push(...readAll(reader));
        expect(write(writer, ...record)).toBe(true);
      }
      sent.push(record);
    }
    received.push(...readAll(reader));
    expect(received).toEqual(sent);
  });

  it('keeps a record the reader stops before, and gives it again at the next read', () => {
    const memory = newRingMemory(256);
    const writer = new RingWriter(memory);
    const reader = new RingReader(memory);
    write(writer, 1, 1, 'a');
    write(writer, 2, 1, 'b');
    write(writer, 1, 1, 'c');
    expect(readAll(reader, 2)).toEqual([[1, 1, 'a']]);
    expect(readAll(reader)).toEqual([
      [2, 1, 'b'],
      [1, 1, 'c'],
    ]);
    expect(readAll(reader)).toEqual([]);
  });

  it('refuses a record when the reader left no room within the wait, and takes it once the reader caught up', () => {
    const memory = newRingMemory(256);
    const writer = new RingWriter(memory);
    const reader = new RingReader(memory);
    const text = 'y'.repeat(40);
    let written = 0;
    while (write(writer, 1, written, text)) written++;
    expect(written).toBeGreaterThan(2);
    const started = Date.now();
    expect(write(writer, 1, 99, text, 50)).toBe(false);
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(readAll(reader)).toHaveLength(written);
    expect(write(writer, 1, 99, text)).toBe(true);
    expect(readAll(reader)).toEqual([[1, 99, text]]);
  });

  it('writes whole numbers up to 2^53 and slots up to 2^32 - 1', () => {
    const memory = newRingMemory(256);
    const writer = new RingWriter(memory);
    const reader = new RingReader(memory);
    const numbers = [0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 5, Number.MAX_SAFE_INTEGER];
    expect(writer.open(3, 2 ** 32 - 1, RECORD_HEADER_BYTES + 8 * numbers.length, 0)).toBe(true);
    for (const n of numbers) writer.out.uint(n);
    writer.close();
    const got: number[] = [];
    reader.read((kind, slot, r) => {
      expect([kind, slot]).toEqual([3, 2 ** 32 - 1]);
      while (r.at < r.end) got.push(r.uint());
      return true;
    });
    expect(got).toEqual(numbers);
  });
});
