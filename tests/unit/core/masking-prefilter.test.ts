import fc from 'fast-check';
import { DETECTOR_NAMES, DETECTORS, type DetectorName } from '../../../core/masking/detectors';
import { COUNT_PASS_MAX_CHARS, ContentScanner } from '../../../core/masking/scanner';
import { MAX_OPEN_VALUE_CHARS, StreamMasker, STREAM_LOOK_BEHIND_CHARS } from '../../../core/masking/stream';

/**
 * The plain detector pass, as the scanner ran before its prefilters: each detector's pattern over the
 * whole text the previous detectors left, its check deciding each match.
 */
function plainPass(names: readonly DetectorName[], text: string, mask: (v: string) => string): string {
  let out = text;
  for (const name of DETECTOR_NAMES) {
    if (!names.includes(name)) continue;
    const d = DETECTORS[name];
    out = out.replace(d.pattern, (match) => (d.valid && !d.valid(match) ? match : mask(match)));
  }
  return out;
}

/** Values every detector finds, near misses, and what stands around them in logs. */
const VALUES = [
  'ada@example.com', 'a.b+c@sub.example.co.uk', 'x@y', '@example.com', 'user@@host.io',
  '4111111111111111', '4111 1111 1111 1111', '5500-0000-0000-0004', '4111111111111112', '12345678901234567890123',
  '123-45-6789', '078-05-1120', '2024-01-01', '123-45-67890',
  'GB82 WEST 1234 5698 7654 32', 'DE89370400440532013000', 'DE89370400440532013001',
  '+1 415 555 2671', '(415) 555-2671', '415-555-2671', '+442079460958', '415.555.2671',
  '10.0.0.1', '192.168.1.254', '256.1.1.1', '1.2.3.4.5', 'v10.0.0',
  '2001:db8::1', 'fe80::1ff:fe23:4567:890a', '::ffff:192.0.2.128', '12:30:45', 'a::b::c',
  'AKIAIOSFODNN7EXAMPLE', 'ASIAY34FZKBOKMUTVV7A', 'AKIAIOSFODNN7EXAMPLE1',
  'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'da39a3ee5e6b4b0d3255bfef95601890afd80709',
  'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl', 'eyJub3QiOiJqd3QifQ.eyJzdWIiOiIxMjM0In0.c2ln',
  '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----', '-----BEGIN RSA PRIVATE KEY-----\nMIIE',
  '2026-12-07T22:00:01.123Z', 'id=7919', 'é', '😀', '\t',
];
/** Characters the detectors' patterns, look-arounds and anchors care about, and some they do not. */
const CHARS = [...'0123456789AKIEFaefxyz@.-_+/=:() %\n', 'é'];

const piece = fc.oneof({ weight: 2, arbitrary: fc.constantFrom(...VALUES) }, { weight: 3, arbitrary: fc.string({ unit: fc.constantFrom(...CHARS), maxLength: 12 }) });
const textOf = (minPieces: number, maxPieces: number) => fc.array(piece, { minLength: minPieces, maxLength: maxPieces }).map((ps) => ps.join(''));
const detectorSet = fc.subarray([...DETECTOR_NAMES], { minLength: 1 });
/** A mask whose output the later detectors can read too (digits and an @), as a partial or hashed mask's can. */
const mask = (v: string): string => `<${v.length}@${v.slice(-4)}>`;

describe('detector prefilters', () => {
  it('mask exactly what the plain detector pass masks, in short texts (counted) and long ones (anchored)', () => {
    fc.assert(
      fc.property(detectorSet, fc.oneof(textOf(1, 8), textOf(60, 200)), (names, text) => {
        expect(new ContentScanner(names, mask).scanString(text)).toBe(plainPass(names, text, mask));
      }),
      { numRuns: 400 },
    );
  });

  it('find the same match ranges as the plain patterns', () => {
    fc.assert(
      fc.property(fc.constantFrom(...DETECTOR_NAMES), textOf(60, 200), (name, text) => {
        const d = DETECTORS[name];
        const plain = [...text.matchAll(d.pattern)].filter((m) => !d.valid || d.valid(m[0])).map((m) => [m.index, m.index + m[0].length]);
        expect(new ContentScanner([name], mask).matchRanges(text)).toEqual(plain);
      }),
      { numRuns: 300 },
    );
  });

  it('keep line ends out of every span, so that a line end bounds every prefiltered match', () => {
    for (const name of DETECTOR_NAMES) {
      const span = DETECTORS[name].prefilter?.span;
      if (span !== undefined) expect(new RegExp(`[${span}]`).test('\n')).toBe(false);
    }
    expect(DETECTORS['pem-private-key'].prefilter).toBeUndefined();
  });

  it('find a value of the shortest length whatever short runs come before it', () => {
    const secret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
    const scanner = new ContentScanner(['aws-secret-access-key'], () => '[X]');
    for (let k = 0; k < 2 * secret.length; k++) {
      const filler = `${' '.repeat(k)}a `;
      expect(scanner.scanString(`${filler}${secret} ${'b'.repeat(COUNT_PASS_MAX_CHARS)}`)).toBe(`${filler}[X] ${'b'.repeat(COUNT_PASS_MAX_CHARS)}`);
    }
  });

  it('mask a long text of many small runs and no values in linear time', () => {
    const scanner = new ContentScanner(DETECTOR_NAMES, mask);
    const text = 'a1 b2-c3.d4:e5+f6/g7=h8@ '.repeat(40_000);
    const started = performance.now();
    expect(scanner.scanString(text)).toBe(text);
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(text.length).toBeGreaterThan(COUNT_PASS_MAX_CHARS);
  });
});

describe('stream masking in line batches', () => {
  /** Splits text at the given cut points (as many as the property draws). */
  const chunked = (text: string, cuts: number[]): string[] => {
    const at = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
    return [...at, text.length].map((end, i) => text.slice(i === 0 ? 0 : at[i - 1], end));
  };

  it('masks a stream of lines shorter than the look-behind, however it is chunked, exactly as the plain pass masks the whole text', () => {
    // Lines of at most five pieces are under 512 characters (a piece is at most about 80).
    const lines = fc.array(textOf(1, 5), { minLength: 1, maxLength: 400 }).map((ls) => `${ls.join('\n')}\n`);
    fc.assert(
      fc.property(detectorSet, lines, fc.array(fc.nat(), { maxLength: 40 }), fc.constantFrom(512, STREAM_LOOK_BEHIND_CHARS), (names, text, cuts, lookBehind) => {
        const stream = new StreamMasker(new ContentScanner(names, mask), lookBehind);
        const out = chunked(text, cuts).map((c) => stream.push(c)).join('') + stream.flush();
        expect(out).toBe(plainPass(names, text, mask));
      }),
      { numRuns: 200 },
    );
  });

  it('holds back a private key block split across chunks until its end arrives', () => {
    const stream = new StreamMasker(new ContentScanner(['pem-private-key'], () => '[KEY]'), 64);
    const key = `-----BEGIN PRIVATE KEY-----\n${'MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n'.repeat(20)}-----END PRIVATE KEY-----`;
    const text = `${'log line\n'.repeat(30)}${key}\n${'after\n'.repeat(30)}`;
    let out = '';
    for (let i = 0; i < text.length; i += 50) out += stream.push(text.slice(i, i + 50));
    out += stream.flush();
    expect(out).toBe(`${'log line\n'.repeat(30)}[KEY]\n${'after\n'.repeat(30)}`);
  });

  it('masks every line after a private key header that never ends, rescanning a bounded amount', () => {
    const scanner = new ContentScanner(DETECTOR_NAMES, () => '[K]');
    let searched = 0;
    const matchRanges = scanner.matchRanges.bind(scanner);
    scanner.matchRanges = (text: string, lineSpanningOnly?: boolean) => {
      searched += text.length;
      return matchRanges(text, lineSpanningOnly);
    };
    const stream = new StreamMasker(scanner);
    const lines = Array.from({ length: 400 }, (_, i) => `key material line ${i} MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n`).join('');
    let out = stream.push('-----BEGIN PRIVATE KEY-----\n');
    const pushed = 40 * lines.length;
    for (let i = 0; i < 40; i++) out += stream.push(lines);
    // Was: the first batch masked to its end, every later line passed as it came.
    expect(out).not.toContain('key material');
    expect(out.length).toBeGreaterThan(0);
    expect(searched).toBeLessThan(3 * pushed);
    expect(stream.flush()).not.toContain('key material');
  });

  it('shows what follows the END line of a key held back past its bound', () => {
    const stream = new StreamMasker(new ContentScanner(['pem-private-key', 'email'], () => '[K]'));
    const body = 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n'.repeat(Math.ceil((2 * MAX_OPEN_VALUE_CHARS) / 33));
    const text = `before\n-----BEGIN PRIVATE KEY-----\n${body}-----END PRIVATE KEY-----\nafter ada@example.com\n${'tail line\n'.repeat(3000)}`;
    let out = '';
    for (let i = 0; i < text.length; i += 4096) out += stream.push(text.slice(i, i + 4096));
    out += stream.flush();
    expect(out).not.toContain('MIIE');
    expect(out.startsWith('before\n[K]')).toBe(true);
    expect(out).toContain(`[K]\nafter [K]\n${'tail line\n'.repeat(3000)}`);
  });

  it('cuts a line longer than the look-behind outside the values it holds', () => {
    const stream = new StreamMasker(new ContentScanner(['email'], () => '[X]'), 32);
    const text = `${'word '.repeat(20)}ada@example.com ${'word '.repeat(20)}`;
    let out = '';
    for (let i = 0; i < text.length; i += 7) out += stream.push(text.slice(i, i + 7));
    out += stream.flush();
    expect(out).toBe(`${'word '.repeat(20)}[X] ${'word '.repeat(20)}`);
  });
});
