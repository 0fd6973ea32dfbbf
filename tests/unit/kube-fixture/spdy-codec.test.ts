import { constants, createDeflate } from 'node:zlib';
import { encodeData, encodePing, encodeSynReply, HEADER_DICTIONARY, HeaderCompressor, HeaderDecompressor, MAX_HEADER_STREAM_BYTES, SpdyFramer, SpdyProtocolError, type SpdyFrame } from '../../support/kube-fixture/streams/spdy-codec';

const headerBlock = (pairs: [string, string][]): Buffer => {
  const u32 = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  return Buffer.concat([u32(pairs.length), ...pairs.flatMap(([k, v]) => [u32(k.length), Buffer.from(k), u32(v.length), Buffer.from(v)])]);
};

/** Compresses blocks the way Go's spdy framer does: one zlib stream, a sync flush after each block. */
async function goStyleBlocks(blocks: Buffer[]): Promise<Buffer[]> {
  const deflate = createDeflate({ dictionary: HEADER_DICTIONARY });
  const out: Buffer[] = [];
  for (const block of blocks) {
    const chunks: Buffer[] = [];
    const onData = (d: Buffer): number => chunks.push(d);
    deflate.on('data', onData);
    deflate.write(block);
    await new Promise<void>((resolve) => deflate.flush(constants.Z_SYNC_FLUSH, () => resolve()));
    deflate.off('data', onData);
    out.push(Buffer.concat(chunks));
  }
  deflate.close();
  return out;
}

describe('SPDY framer', () => {
  const stream = Buffer.concat([encodeData(1, Buffer.from('hello')), encodePing(7), encodeData(3, Buffer.alloc(0), 1), encodeSynReply(5, Buffer.from([1, 2, 3]))]);
  const parse = (pieces: Buffer[]): SpdyFrame[] => {
    const framer = new SpdyFramer();
    const frames: SpdyFrame[] = [];
    for (const p of pieces) framer.push(p, (f) => frames.push(f));
    return frames;
  };
  const whole = parse([stream]);

  it('reads data and control frames from one buffer', () => {
    expect(whole.map((f) => (f.type === 'data' ? `data:${f.streamId}:${f.data.toString()}:${f.flags}` : `control:${f.control}`))).toEqual(['data:1:hello:0', 'control:6', 'data:3::1', 'control:2']);
  });

  it('reads the same frames at every split point and one byte at a time', () => {
    for (let i = 0; i <= stream.length; i++) expect(parse([stream.subarray(0, i), stream.subarray(i)])).toEqual(whole);
    expect(parse([...stream].map((b) => Buffer.from([b])))).toEqual(whole);
  });

  it('refuses a control frame of another SPDY version', () => {
    const v2 = encodePing(1);
    v2.writeUInt16BE(0x8002, 0);
    expect(() => new SpdyFramer().push(v2, () => undefined)).toThrow(SpdyProtocolError);
  });
});

describe('SPDY header compression', () => {
  it('decodes header blocks a Go-style shared zlib stream compressed, block after block', async () => {
    const [first, second] = await goStyleBlocks([headerBlock([['streamtype', 'error']]), headerBlock([['streamtype', 'stdout'], ['port', '8080']])]);
    const inflater = new HeaderDecompressor();
    expect(inflater.decompress(first as Buffer)).toEqual(new Map([['streamtype', 'error']]));
    expect(inflater.decompress(second as Buffer)).toEqual(new Map([['streamtype', 'stdout'], ['port', '8080']]));
  });

  it('writes blocks a shared-context inflater reads in sequence, each ending in a sync flush', () => {
    const deflater = new HeaderCompressor();
    const inflater = new HeaderDecompressor();
    const blocks = [new Map([['a', '1']]), new Map(), new Map([['x-long', 'v'.repeat(70_000)]])];
    for (const headers of blocks) {
      const compressed = deflater.compress(headers);
      expect(compressed.subarray(-5)).toEqual(Buffer.from([0, 0, 0, 0xff, 0xff]));
      expect(inflater.decompress(compressed)).toEqual(headers);
    }
  });

  it('refuses more compressed header bytes than one connection may send', () => {
    const inflater = new HeaderDecompressor();
    expect(() => inflater.decompress(Buffer.alloc(MAX_HEADER_STREAM_BYTES + 1))).toThrow(SpdyProtocolError);
  });

  it('builds the 1423-byte dictionary of the SPDY/3 draft', () => {
    expect(HEADER_DICTIONARY.length).toBe(1423);
    expect(HEADER_DICTIONARY.subarray(0, 11)).toEqual(Buffer.from([0, 0, 0, 7, ...Buffer.from('options')]));
    expect(HEADER_DICTIONARY.subarray(-6).toString()).toBe('enq=0.');
  });
});
