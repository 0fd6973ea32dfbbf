import { deflateSync, constants } from 'node:zlib';
import { MAX_SPDY_FRAME_BYTES, MAX_SPDY_HEADER_BLOCKS, MAX_SPDY_HEADER_BYTES, SPDY_HEADER_DICTIONARY } from '../../../core/kubernetes/spdy-frames';
import { MAX_SPDY_TERMINAL_STREAMS, SpdyTerminalReader } from '../../../agent/kubernetes/spdy-terminal';
import { TerminalFeed } from '../../../agent/kubernetes/terminal-feed';
import { CONTROL, encodeControl, encodeData, HEADER_DICTIONARY, HeaderCompressor } from '../../support/kube-fixture/streams/spdy-codec';

/** A SYN_STREAM as kubectl sends it: stream id, associated id, priority and slot, then the compressed headers. */
function synStream(compressor: HeaderCompressor, streamId: number, type: string): Buffer {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt32BE(streamId, 0);
  return encodeControl(CONTROL.SYN_STREAM, 0, Buffer.concat([fixed, compressor.compress(new Map([['streamtype', type]]))]));
}

/** A SYN_STREAM opening stream 1 with `pairs` (any names, repeated or not) deflated by zlib, as Go's writer compresses. */
function deflatedSynStream(pairs: [string, string][]): Buffer {
  const parts = [Buffer.alloc(4)];
  parts[0]?.writeUInt32BE(pairs.length);
  for (const [n, v] of pairs) for (const s of [n, v]) parts.push(Buffer.from([0, 0, 0, s.length]), Buffer.from(s));
  const fixed = Buffer.alloc(10);
  fixed.writeUInt32BE(1, 0);
  return encodeControl(CONTROL.SYN_STREAM, 0, Buffer.concat([fixed, deflateSync(Buffer.concat(parts), { dictionary: SPDY_HEADER_DICTIONARY, finishFlush: constants.Z_SYNC_FLUSH })]));
}

function recorder() {
  const seen: string[] = [];
  const reader = new SpdyTerminalReader(new TerminalFeed({ output: (t) => seen.push(`o ${t}`), input: (t) => seen.push(`i ${t}`), resize: (w, h) => seen.push(`r ${w}x${h}`) }));
  return { seen, reader };
}

describe('reading an exec over SPDY for its recording', () => {
  it('uses the dictionary SPDY/3 defines (the codec the fixture shares with kubectl agrees)', () => {
    expect(SPDY_HEADER_DICTIONARY.equals(HEADER_DICTIONARY)).toBe(true);
  });

  it('records stdout and stderr as output, stdin as input and resize messages, by the stream each SYN_STREAM named', () => {
    const { seen, reader } = recorder();
    const headers = new HeaderCompressor();
    const opened = Buffer.concat([synStream(headers, 1, 'error'), synStream(headers, 3, 'stdin'), synStream(headers, 5, 'stdout'), synStream(headers, 7, 'stderr'), synStream(headers, 9, 'resize')]);
    // Cut at every few bytes, as TCP may.
    for (let at = 0; at < opened.length; at += 7) expect(reader.fromCaller(opened.subarray(at, at + 7))).toBeUndefined();
    expect(reader.fromCaller(Buffer.concat([encodeData(9, Buffer.from('{"Width":120,"Height":40}\n{"Width":')), encodeData(9, Buffer.from('100,"Height":30}\n')), encodeData(3, Buffer.from('ls\r'))]))).toBeUndefined();
    const euro = Buffer.from('€ done\n');
    expect(reader.fromUpstream(Buffer.concat([encodeData(5, Buffer.concat([Buffer.from('out '), euro.subarray(0, 1)])), encodeData(5, euro.subarray(1)), encodeData(7, Buffer.from('err\n')), encodeData(1, Buffer.from('{"status":"Success"}'))]))).toBeUndefined();
    expect(seen).toEqual(['r 120x40', 'r 100x30', 'i ls\r', 'o out ', 'o € done\n', 'o err\n']);
  });

  it('reads a header block deflated by zlib (not only the stored blocks the fixture writes)', () => {
    const flushed = recorder();
    expect(flushed.reader.fromCaller(deflatedSynStream([['streamtype', 'stdout']]))).toBeUndefined();
    expect(flushed.reader.fromUpstream(encodeData(1, Buffer.from('hello')))).toBeUndefined();
    expect(flushed.seen).toEqual(['o hello']);
  });

  it('ignores data on streams it was not told about, and port-forward style streams', () => {
    const { seen, reader } = recorder();
    const headers = new HeaderCompressor();
    expect(reader.fromCaller(synStream(headers, 1, 'data'))).toBeUndefined();
    expect(reader.fromUpstream(Buffer.concat([encodeData(1, Buffer.from('bytes')), encodeData(11, Buffer.from('stray'))]))).toBeUndefined();
    expect(seen).toEqual([]);
  });

  it('reports what it cannot read: a stream opened twice, too many streams, a frame over the limit, a bad header block, another SPDY version', () => {
    const twice = recorder();
    const h = new HeaderCompressor();
    expect(twice.reader.fromCaller(Buffer.concat([synStream(h, 1, 'stdout'), synStream(h, 1, 'stdin')]))).toBe('SPDY stream 1 was opened twice');

    const many = recorder();
    const h2 = new HeaderCompressor();
    const syns = Array.from({ length: MAX_SPDY_TERMINAL_STREAMS + 1 }, (_, i) => synStream(h2, 2 * i + 1, 'stdout'));
    expect(many.reader.fromCaller(Buffer.concat(syns))).toBe(`over ${MAX_SPDY_TERMINAL_STREAMS} SPDY streams on one terminal`);

    const big = recorder();
    const header = Buffer.alloc(8);
    header.writeUInt32BE(5, 0);
    header.writeUIntBE(MAX_SPDY_FRAME_BYTES + 1, 5, 3);
    expect(big.reader.fromUpstream(header)).toBe(`a SPDY frame of ${MAX_SPDY_FRAME_BYTES + 1} bytes is over ${MAX_SPDY_FRAME_BYTES}`);

    const garbled = recorder();
    const fixed = Buffer.alloc(10);
    fixed.writeUInt32BE(1, 0);
    expect(garbled.reader.fromCaller(encodeControl(CONTROL.SYN_STREAM, 0, Buffer.concat([fixed, Buffer.from('not zlib at all')])))).toMatch(/^a SPDY header block cannot be inflated/);

    const v2 = recorder();
    const control = encodeControl(CONTROL.PING, 0, Buffer.alloc(4));
    control.writeUInt16BE(0x8002, 0);
    expect(v2.reader.fromCaller(control)).toBe('SPDY version 2 is not 3');
  });

  it('bounds the header bytes one connection may send', () => {
    const { reader } = recorder();
    const h = new HeaderCompressor();
    const fixed = Buffer.alloc(10);
    fixed.writeUInt32BE(1, 0);
    const huge = h.compress(new Map([['x-filler', 'a'.repeat(MAX_SPDY_HEADER_BYTES)]]));
    expect(reader.fromCaller(encodeControl(CONTROL.SYN_STREAM, 0, Buffer.concat([fixed, huge])))).toBe(`SPDY header blocks over ${MAX_SPDY_HEADER_BYTES} bytes on one connection`);
  });

  it('refuses a header block that names a header twice or packs several values in one: Go keeps the first, so stdin would pass unrecorded', () => {
    const syn = deflatedSynStream;
    expect(recorder().reader.fromCaller(syn([['streamtype', 'stdin'], ['streamtype', 'error']]))).toBe('a SPDY header block names streamtype twice');
    expect(recorder().reader.fromCaller(syn([['streamtype', 'stdin'], ['StreamType', 'error']]))).toBe('a SPDY header block names streamtype twice');
    expect(recorder().reader.fromCaller(syn([['streamtype', 'stdin\u0000error']]))).toBe('a SPDY header block packs several values into streamtype');
  });

  it('bounds the header blocks one connection may send (each is read by inflating all before it again)', () => {
    const { reader } = recorder();
    const h = new HeaderCompressor();
    const id = Buffer.alloc(4);
    id.writeUInt32BE(1, 0);
    const frames = [synStream(h, 1, 'stdout'), ...Array.from({ length: MAX_SPDY_HEADER_BLOCKS - 1 }, () => encodeControl(CONTROL.HEADERS, 0, Buffer.concat([id, h.compress(new Map())])))];
    expect(reader.fromCaller(Buffer.concat(frames))).toBeUndefined();
    expect(reader.fromCaller(encodeControl(CONTROL.HEADERS, 0, Buffer.concat([id, h.compress(new Map())])))).toBe(`over ${MAX_SPDY_HEADER_BLOCKS} SPDY header blocks on one connection`);
  });

  it('reads a frame of the largest size sent 16 bytes at a time without copying what arrived on every chunk', () => {
    const { seen, reader } = recorder();
    expect(reader.fromCaller(synStream(new HeaderCompressor(), 1, 'stdout'))).toBeUndefined();
    const frame = encodeData(1, Buffer.alloc(MAX_SPDY_FRAME_BYTES, 'a'));
    const started = performance.now();
    const failures: string[] = [];
    for (let at = 0; at < frame.length; at += 16) {
      const failed = reader.fromUpstream(frame.subarray(at, at + 16));
      if (failed !== undefined) failures.push(failed);
    }
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(failures).toEqual([]);
    expect(seen).toEqual([`o ${'a'.repeat(MAX_SPDY_FRAME_BYTES)}`]);
  }, 60_000);
});
