import { JsonByteBuffer, jsonText, MAX_IDLE_BUFFER_BYTES } from '../../../agent/recording/json-byte-buffer';

/** What the buffer holds, parsed: every write must leave valid JSON that means what JSON.stringify would. */
function parsed(write: (b: JsonByteBuffer) => void, initialBytes = 4): unknown {
  const b = new JsonByteBuffer(initialBytes);
  write(b);
  return JSON.parse(b.view().toString('utf8'));
}

describe('JsonByteBuffer', () => {
  const strings = [
    '',
    'SELECT abalance FROM pgbench_accounts WHERE aid = 1;',
    'quote " backslash \\ tab \t newline \n nul \u0000 unit-sep \u001f del \u007f',
    'non-ASCII: é ü 漢字 😀 and a long tail ' + 'x'.repeat(300),
    'lone surrogate \ud800 here',
    'x'.repeat(5000) + '"',
  ];

  it.each(strings)('writes a string value as JSON.stringify means it: %#', (s) => {
    const expected = s.includes('\ud800') ? s.replace('\ud800', '\ufffd') : s;
    const value = parsed((b) => b.string(s));
    // A lone surrogate is either escaped (JSON.stringify) or replaced: both are valid JSON for the auditor.
    expect([s, expected]).toContainEqual(value);
  });

  it.each(strings.filter((s) => !s.includes('\ud800')))('writes UTF-8 bytes as a string value: %#', (s) => {
    const bytes = Buffer.concat([Buffer.from([0xde, 0xad]), Buffer.from(s, 'utf8'), Buffer.from([0xbe])]);
    expect(parsed((b) => b.utf8(bytes, 2, bytes.length - 1))).toBe(s);
  });

  it('decodes bytes that are not UTF-8 with replacement characters, as Buffer#toString does', () => {
    const bytes = Buffer.from([0x61, 0xff, 0xfe, 0x62, 0xc3]);
    expect(parsed((b) => b.utf8(bytes, 0, bytes.length))).toBe(bytes.toString('utf8'));
    expect(parsed((b) => b.utf8(bytes, 0, bytes.length))).toBe('a\ufffd\ufffdb\ufffd');
  });

  it.each([0, 7, 10, 12345, 2 ** 40, Number.MAX_SAFE_INTEGER])('writes the integer %d in decimal', (n) => {
    expect(parsed((b) => b.uint(n))).toBe(n);
  });

  it.each([
    [0, 3, '000'],
    [7, 3, '007'],
    [45, 3, '045'],
    [999, 3, '999'],
    [12, 2, '12'],
  ])('writes %d zero-padded to %d digits', (n, width, text) => {
    const b = new JsonByteBuffer(1);
    b.paddedUint(n, width);
    expect(b.view().toString('latin1')).toBe(text);
  });

  it('writes what is not a non-negative integer through JSON', () => {
    expect(parsed((b) => b.uint(-3))).toBe(-3);
    expect(parsed((b) => b.uint(1.5))).toBe(1.5);
    expect(parsed((b) => b.uint(Number.NaN))).toBeNull();
  });

  it('builds whole events from prepared pieces, growing as needed, and forgets a cut-short tail', () => {
    const b = new JsonByteBuffer(2);
    b.raw(jsonText('{"t":"'));
    b.ascii('2026-11-28T00:00:00.000Z');
    b.raw(jsonText('","v":['));
    b.string('a');
    b.raw(jsonText(','));
    b.utf8(Buffer.from('b'), 0, 1);
    b.raw(jsonText('],"n":'));
    b.uint(42);
    b.json(',"x":"é"}');
    const whole = b.length;
    b.newline();
    b.raw(jsonText('{"cut":'));
    b.truncate(whole);
    expect(JSON.parse(b.view().toString('utf8'))).toEqual({ t: '2026-11-28T00:00:00.000Z', v: ['a', 'b'], n: 42, x: 'é' });
    b.reset();
    expect(b.length).toBe(0);
  });

  it('gives back what a large value made it grow to once emptied, and keeps a modest size', () => {
    const initialBytes = 1024;
    const b = new JsonByteBuffer(initialBytes);
    b.utf8(Buffer.alloc(MAX_IDLE_BUFFER_BYTES * 2, 0x61), 0, MAX_IDLE_BUFFER_BYTES * 2);
    expect(b.bytes.length).toBeGreaterThan(MAX_IDLE_BUFFER_BYTES);
    b.reset();
    expect(b.bytes.length).toBe(initialBytes);
    b.utf8(Buffer.alloc(initialBytes * 4, 0x61), 0, initialBytes * 4);
    const grown = b.bytes;
    b.reset();
    expect(b.bytes).toBe(grown);
  });

  it('keeps up to the idle size its owner gives (a spool fills it to its flush size between resets)', () => {
    const b = new JsonByteBuffer(1024, MAX_IDLE_BUFFER_BYTES * 4);
    b.utf8(Buffer.alloc(MAX_IDLE_BUFFER_BYTES * 2, 0x61), 0, MAX_IDLE_BUFFER_BYTES * 2);
    const grown = b.bytes;
    expect(grown.length).toBeGreaterThan(MAX_IDLE_BUFFER_BYTES * 2);
    b.reset();
    expect(b.bytes).toBe(grown);
    b.utf8(Buffer.alloc(MAX_IDLE_BUFFER_BYTES * 5, 0x61), 0, MAX_IDLE_BUFFER_BYTES * 5);
    b.reset();
    expect(b.bytes.length).toBe(1024);
  });
});
