import { framerErrorReport, MessageFramer, takeStartupPacket } from '../../../agent/postgres/protocol/framer';
import { BodyReader, bodyOf, readBind, readParse, RecentCstring } from '../../../agent/postgres/protocol/reader';
import { cstring, int32, message, startupMessage } from '../../../agent/postgres/protocol/writer';

function collect(framer: MessageFramer, chunks: Buffer[]): { code: number; bytes: string }[] {
  const out: { code: number; bytes: string }[] = [];
  for (const c of chunks) {
    const problem = framer.push(c, (buf, start, end, code) => out.push({ code, bytes: buf.subarray(start, end).toString('hex') }));
    if (problem) throw new Error(problem.kind);
  }
  return out;
}

describe('MessageFramer', () => {
  const stream = Buffer.concat([
    message(0x50, Buffer.concat([cstring('s1'), cstring('SELECT $1::int'), Buffer.from([0, 1]), int32(23)])),
    message(0x42, Buffer.concat([cstring(''), cstring('s1'), Buffer.from([0, 0, 0, 1]), int32(2), Buffer.from('42'), Buffer.from([0, 0])])),
    message(0x45, Buffer.concat([cstring(''), int32(0)])),
    message(0x53),
    message(0x51, cstring('SELECT 1')),
  ]);
  const whole = collect(new MessageFramer(1024), [stream]);

  it('finds each message in one chunk', () => {
    expect(whole.map((m) => String.fromCharCode(m.code)).join('')).toBe('PBESQ');
  });

  it('gives the same messages at every split point', () => {
    for (let i = 1; i < stream.length; i++) {
      expect(collect(new MessageFramer(1024), [stream.subarray(0, i), stream.subarray(i)])).toEqual(whole);
    }
  });

  it('gives the same messages at every pair of split points', () => {
    for (let i = 1; i < stream.length; i += 3) {
      for (let j = i + 1; j < stream.length; j += 2) {
        expect(collect(new MessageFramer(1024), [stream.subarray(0, i), stream.subarray(i, j), stream.subarray(j)])).toEqual(whole);
      }
    }
  });

  it('gives the same messages fed one byte at a time', () => {
    const bytes = [...stream].map((b) => Buffer.from([b]));
    expect(collect(new MessageFramer(1024), bytes)).toEqual(whole);
  });

  it('refuses a declared length over the cap before buffering it', () => {
    const framer = new MessageFramer(100);
    const problem = framer.push(Buffer.concat([Buffer.from('Q'), int32(1_000_000)]), () => undefined);
    expect(problem).toEqual({ kind: 'too-large', code: 0x51, length: 1_000_000 });
  });

  it('refuses a length below the header size', () => {
    expect(new MessageFramer(100).push(Buffer.concat([Buffer.from('Q'), int32(2)]), () => undefined)).toMatchObject({ kind: 'malformed' });
  });

  it('decodes Parse and Bind bodies, and rejects truncated ones', () => {
    const [parse, bind] = [0, 1].map((i) => {
      let hit: { buf: Buffer; start: number; end: number } | undefined;
      let n = 0;
      new MessageFramer(1024).push(stream, (buf, start, end) => {
        if (n++ === i) hit = { buf, start, end };
      });
      return hit as { buf: Buffer; start: number; end: number };
    });
    expect(readParse(bodyOf(parse!.buf, parse!.start, parse!.end))).toEqual({ name: 's1', query: 'SELECT $1::int', paramTypes: [23] });
    expect(readBind(bodyOf(bind!.buf, bind!.start, bind!.end)).params.map((p) => p?.toString())).toEqual(['42']);
    expect(() => readParse(bodyOf(parse!.buf, parse!.start, parse!.end - 3))).toThrow(/truncated|unterminated/);
  });
});

describe('takeStartupPacket', () => {
  const packet = startupMessage({ user: 'alice', database: 'demo' });

  it('waits for the whole packet at every split point', () => {
    for (let i = 0; i < packet.length; i++) expect(takeStartupPacket(packet.subarray(0, i))).toBe('need-more');
    const got = takeStartupPacket(packet);
    expect(got !== 'need-more' && got !== 'invalid' && got.body.readInt32BE(0)).toBe(196608);
  });

  it('rejects absurd lengths', () => {
    expect(takeStartupPacket(int32(3))).toBe('invalid');
    expect(takeStartupPacket(int32(1_000_000))).toBe('invalid');
  });
});

describe('RecentCstring', () => {
  const body = (...strings: string[]): Buffer => Buffer.concat(strings.map((s) => cstring(s)));

  it('decodes each string as it is, reusing the last one only while the bytes repeat', () => {
    const recent = new RecentCstring();
    const read = (b: Buffer): string[] => {
      const r = new BodyReader(b, 0, b.length);
      return [r.cstring(recent), r.cstring(recent)];
    };
    expect(read(body('SELECT 1', 'SELECT 1'))).toEqual(['SELECT 1', 'SELECT 1']);
    // Same length, other bytes; then a longer one; then non-ASCII; then past what it remembers.
    expect(read(body('SELECT 2', 'UPDATE 1'))).toEqual(['SELECT 2', 'UPDATE 1']);
    expect(read(body('INSERT 0 1', 'INSERT 0 1'))).toEqual(['INSERT 0 1', 'INSERT 0 1']);
    expect(read(body('sté', 'stè'))).toEqual(['sté', 'stè']);
    const long = 'x'.repeat(100);
    expect(read(body(long, `${'x'.repeat(99)}y`))).toEqual([long, `${'x'.repeat(99)}y`]);
  });

  it('still refuses an unterminated string', () => {
    const b = Buffer.from('no terminator');
    expect(() => new BodyReader(b, 0, b.length).cstring(new RecentCstring())).toThrow(/unterminated/);
    expect(() => new BodyReader(b, 0, b.length).skipCstring()).toThrow(/unterminated/);
  });

  it('steps over a string it does not need to the field after it', () => {
    const b = body('portal', 'statement');
    const r = new BodyReader(b, 0, b.length);
    r.skipCstring();
    expect(r.cstring()).toBe('statement');
    expect(r.remaining).toBe(0);
  });
});

describe('framerErrorReport', () => {
  const framer = new MessageFramer(1024);
  const problemOf = (bytes: Buffer) => framer.push(bytes, () => undefined);

  it('ends a session over an impossible length from the database as a protocol violation, not a limit', () => {
    const problem = problemOf(Buffer.from([0x44, 0, 0, 0, 2]));
    expect(problem?.kind).toBe('malformed');
    expect(problem && framerErrorReport(problem, 1024, 'database')).toEqual({ sqlState: '08P01', message: 'twokey: the database sent a message with an invalid length 2' });
  });

  it('names the limit for a message over it, from either side', () => {
    const problem = new MessageFramer(1024).push(Buffer.concat([Buffer.from([0x44]), int32(5000)]), () => undefined);
    expect(problem?.kind).toBe('too-large');
    expect(problem && framerErrorReport(problem, 1024, 'database')).toEqual({ sqlState: '54000', message: 'twokey: the database sent a message of 5001 bytes, over the limit of 1024 bytes' });
    expect(problem && framerErrorReport(problem, 1024, 'client')).toEqual({ sqlState: '54000', message: 'twokey: message of 5001 bytes exceeds the limit of 1024 bytes' });
  });
});
