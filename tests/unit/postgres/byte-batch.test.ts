import { ByteBatch } from '../../../agent/postgres/protocol/byte-batch';

describe('ByteBatch output buffers', () => {
  it('reuses an output buffer once the socket has taken its bytes, and not before', () => {
    const sent: { bytes: Buffer; text: string; written?: () => void }[] = [];
    const batch = new ByteBatch((bytes, written) => sent.push({ bytes, text: bytes.toString('latin1'), written }));
    const write = (text: string) => {
      const { target, offset } = batch.reserve(text.length);
      target.write(text, offset, 'latin1');
      batch.flush();
    };

    write('first');
    write('second');
    // The first buffer is still the socket's: the second went into another one.
    expect(sent[1]?.bytes.buffer).not.toBe(sent[0]?.bytes.buffer);
    expect(sent[0]?.bytes.toString('latin1')).toBe('first');

    sent[0]?.written?.();
    write('third');
    write('fourth');
    expect(sent.map((s) => s.text)).toEqual(['first', 'second', 'third', 'fourth']);
    // The third message's buffer came back from the pool: the first one's memory, not a new allocation.
    expect(sent[3]?.bytes.buffer === sent[0]?.bytes.buffer || sent[2]?.bytes.buffer === sent[0]?.bytes.buffer).toBe(true);
  });
});
