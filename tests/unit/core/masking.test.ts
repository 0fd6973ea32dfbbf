import { DETECTOR_NAMES, type DetectorName } from '../../../core/masking/detectors';
import { MaskingProfile } from '../../../core/masking/profile';
import { ContentScanner } from '../../../core/masking/scanner';
import { StreamMasker } from '../../../core/masking/stream';
import { maskerFor } from '../../../core/masking/styles';
import { policySchema } from '../../../core/policy/schema';

const scannerFor = (name: DetectorName) => new ContentScanner([name], () => '[X]');

/** Values each detector must mask, and look-alikes it must leave visible. */
const CASES: Record<DetectorName, { hits: string[]; misses: string[] }> = {
  email: { hits: ['ada@example.com', 'mail: a.b+c@sub.example.co.uk.'], misses: ['ada@localhost', 'not an email', '@example.com'] },
  'card-number': {
    hits: ['4111111111111111', '4111 1111 1111 1111', '5500-0000-0000-0004', 'card 378282246310005 ok'],
    misses: ['4111111111111112', '1234 5678 9012 3456', '12345678901234567890123', '2024-01-01 07:00:00+00'],
  },
  'us-ssn': { hits: ['123-45-6789', 'ssn=078-05-1120;'], misses: ['000-12-3456', '666-12-3456', '912-34-5678', '123-00-4567', '123-45-0000', '2024-01-01', '123-45-67890'] },
  iban: { hits: ['GB82 WEST 1234 5698 7654 32', 'DE89370400440532013000'], misses: ['GB82 WEST 1234 5698 7654 33', 'DE89370400440532013001'] },
  phone: { hits: ['+1 415 555 2671', '(415) 555-2671', '415-555-2671', '+442079460958'], misses: ['2024-01-01', '415 5552671x', '123-45-6789', 'v1.2.3'] },
  ipv4: { hits: ['10.0.0.1', 'from 192.168.1.254.'], misses: ['256.1.1.1', '1.2.3', '1.2.3.4.5', 'v10.0.0'] },
  ipv6: { hits: ['2001:db8::1', 'fe80::1ff:fe23:4567:890a', '::ffff:192.0.2.128', '2001:0db8:0000:0000:0000:ff00:0042:8329'], misses: ['12:30:45', '00:1a:2b:3c:4d:5e', 'a::b::c'] },
  'aws-access-key-id': { hits: ['AKIAIOSFODNN7EXAMPLE', 'key=ASIAY34FZKBOKMUTVV7A'], misses: ['AKIAIOSFODNN7EXAMPL', 'XKIAIOSFODNN7EXAMPLE', 'AKIAIOSFODNN7EXAMPLE1'] },
  'aws-secret-access-key': { hits: ['wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'], misses: ['da39a3ee5e6b4b0d3255bfef95601890afd80709', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKE'] },
  jwt: {
    hits: ['eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl', 'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.'],
    misses: ['eyJub3QiOiJqd3QifQ.eyJzdWIiOiIxMjM0In0.c2ln', 'eyJhbGciOiJIUzI1NiJ9'],
  },
  'pem-private-key': {
    hits: ['-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----', 'x -----BEGIN RSA PRIVATE KEY-----\nMIIE (cut short'],
    misses: ['-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----', '-----BEGIN PUBLIC KEY-----'],
  },
};

describe('content detectors', () => {
  for (const name of DETECTOR_NAMES) {
    const { hits, misses } = CASES[name];
    it.each(hits)(`${name} masks %j`, (value) => {
      expect(scannerFor(name).scanString(value)).toContain('[X]');
    });
    it.each(misses)(`${name} leaves %j visible`, (value) => {
      expect(scannerFor(name).scanString(value)).toBe(value);
    });
  }

  it('masks an IPv6 address with an embedded IPv4 part whole, not up to its first dot', () => {
    expect(scannerFor('ipv6').scanString('from ::ffff:192.0.2.128 and 64:ff9b::10.1.2.3.')).toBe('from [X] and [X].');
  });

  it('reports nothing for clean bytes without allocating a string', () => {
    const all = new ContentScanner(DETECTOR_NAMES, () => '*');
    const bytes = Buffer.from('Ada Ahmed');
    expect(all.scanBytes(bytes, 0, bytes.length)).toBeUndefined();
    const dirty = Buffer.from('write to ada@example.com today');
    expect(all.scanBytes(dirty, 0, dirty.length)).toBe('write to * today');
  });
});

describe('mask styles', () => {
  it('hides all, keeps the last four, or hashes with the key', () => {
    expect(maskerFor('full', undefined)('123-45-6789')).toBe('****');
    expect(maskerFor('partial', undefined)('123-45-6789')).toBe('****6789');
    expect(maskerFor('partial', undefined)('1234')).toBe('****');
    const key = Buffer.from('k');
    const hash = maskerFor('hash', key);
    expect(hash('a@example.com')).toMatch(/^hmac:[0-9a-f]{16}$/);
    expect(hash('a@example.com')).toBe(hash('a@example.com'));
    expect(maskerFor('hash', Buffer.from('other'))('a@example.com')).not.toBe(hash('a@example.com'));
    expect(maskerFor('hash', undefined)('a@example.com')).toBe('****');
  });
});

describe('masking profile', () => {
  const policy = policySchema.parse({
    masks: [
      { name: 'a', targets: ['t'], subjects: { groups: ['g'] }, columns: ['public.customers.*'], style: 'partial' },
      { name: 'b', targets: ['t'], subjects: { groups: ['g'] }, columns: ['public.customers.ssn'], style: 'full', strict: true, detectors: ['us-ssn'] },
    ],
  });

  it('takes the strongest style and strictness when rules overlap', () => {
    const profile = new MaskingProfile(policy.masks, undefined);
    expect(profile.column('public.customers.ssn')).toMatchObject({ style: 'full', strict: true });
    expect(profile.column('public.customers.email')).toMatchObject({ style: 'partial', strict: false });
    expect(profile.column('public.orders.amount')).toBeUndefined();
    expect(profile.derived(['public.customers.email'], false)?.style).toBe('full');
    expect(profile.strict).toBe(true);
  });
});

describe('stream masking', () => {
  it('masks a value split across chunks and holds back only the look-behind', () => {
    const stream = new StreamMasker(new ContentScanner(['email'], () => '[X]'), 16);
    let out = stream.push('hello ada@exam');
    out += stream.push('ple.com and more text after it');
    out += stream.flush();
    expect(out).toBe('hello [X] and more text after it');
  });

  it('searches each character of a stream of small chunks a bounded number of times, not once per chunk', () => {
    const scanner = new ContentScanner(['email'], () => '[X]');
    let searched = 0;
    const matchRanges = scanner.matchRanges.bind(scanner);
    scanner.matchRanges = (text: string) => {
      searched += text.length;
      return matchRanges(text);
    };
    const stream = new StreamMasker(scanner);
    const line = 'INFO served /api/v1/x for ada@example.com in 12 ms\n';
    let out = '';
    for (let i = 0; i < 5_000; i++) out += stream.push(line);
    out += stream.flush();
    expect(out).toBe('INFO served /api/v1/x for [X] in 12 ms\n'.repeat(5_000));
    expect(searched).toBeLessThan(3 * line.length * 5_000);
  });
});

describe('detector cost', () => {
  it('finds an address beside a long run of one letter in linear time', () => {
    const scanner = new ContentScanner(['email'], () => '[X]');
    const text = `${'x'.repeat(100_000)} ada@example.com`;
    const started = performance.now();
    expect(scanner.scanString(text)).toBe(`${'x'.repeat(100_000)} [X]`);
    // Was 20 s (every start inside the run scanned the rest of it); linear is a few ms.
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});
