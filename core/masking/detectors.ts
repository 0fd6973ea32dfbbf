/**
 * Content detectors: what sensitive values look like in text. Each is a pattern that finds candidates
 * plus, where the format has one, a checksum that rejects look-alikes (a Luhn-invalid digit run stays
 * visible). Patterns are compiled once, with the global flag, and reused.
 *
 * `mayOccur` is a cheap necessary condition over character counts of the value: most values (names,
 * ids, timestamps) rule out every detector without running a regular expression.
 */
/** In scan order: longest formats first, so a PEM block or a JWT is masked whole before shorter patterns look inside it. */
export const DETECTOR_NAMES = [
  'pem-private-key',
  'jwt',
  'aws-secret-access-key',
  'aws-access-key-id',
  'email',
  'iban',
  'card-number',
  'us-ssn',
  'phone',
  'ipv6',
  'ipv4',
] as const;

export type DetectorName = (typeof DETECTOR_NAMES)[number];

/** Character counts of one value, gathered in one pass (see `countCharacters`). */
export interface CharacterCounts {
  length: number;
  digits: number;
  upper: number;
  lower: number;
  /** `/`, which base64 uses besides letters, digits and `+`. */
  slash: number;
  at: number;
  colon: number;
  dot: number;
  dash: number;
  plus: number;
  separators: number;
}

export interface Detector {
  readonly name: DetectorName;
  readonly pattern: RegExp;
  readonly mayOccur: (c: CharacterCounts) => boolean;
  /** A second look at a candidate match; absent when the pattern is the whole definition. */
  readonly valid?: (match: string) => boolean;
  /**
   * The way to the few places in a long text where the pattern can match (see scanner.ts); absent
   * for a pattern that may span lines (a PEM block), which runs over the whole text.
   *
   * `span` (the body of an ASCII character class, without a line end) holds every character a match is
   * made of and every character its look-arounds reject. A match then lies in one run of span
   * characters, and the pattern run on that run alone finds exactly what it finds in the whole text:
   * just outside the run is a character its look-arounds accept, as they accept the text's edge. The
   * runs worth running it on are found by `anchor` (global, no look-behind, never empty), found in
   * every match and ending inside it, or by length: every match is at least `minRun` span characters.
   */
  readonly prefilter?: { readonly span: string } & ({ readonly anchor: RegExp } | { readonly minRun: number });
}

/** ISO/IEC 7812-1 check digit over the digits of `s` (separators ignored). */
export function luhnValid(s: string): boolean {
  let sum = 0;
  let count = 0;
  for (let i = s.length - 1; i >= 0; i--) {
    const code = s.charCodeAt(i);
    if (code < 48 || code > 57) continue;
    let d = code - 48;
    if (count % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    count++;
  }
  return count >= 13 && count <= 19 && sum % 10 === 0;
}

/** ISO 13616: move the first four characters to the end, letters to 10..35, the number mod 97 is 1. */
export function ibanValid(s: string): boolean {
  const compact = s.replace(/ /g, '');
  if (compact.length < 15 || compact.length > 34) return false;
  const rearranged = compact.slice(4) + compact.slice(0, 4);
  let remainder = 0;
  for (const ch of rearranged) {
    const code = ch.charCodeAt(0);
    const value = code >= 65 ? code - 55 : code - 48;
    remainder = (value > 9 ? remainder * 100 + value : remainder * 10 + value) % 97;
  }
  return remainder === 1;
}

/** SSA rules: area not 000, 666 or 9xx; group not 00; serial not 0000. */
export function ssnValid(s: string): boolean {
  const area = Number(s.slice(0, 3));
  return area !== 0 && area !== 666 && area < 900 && s.slice(4, 6) !== '00' && s.slice(7, 11) !== '0000';
}

/** RFC 4291 text forms: eight groups, or fewer with one `::`, optionally ending in a dotted quad. */
export function ipv6Valid(s: string): boolean {
  let text = s;
  let groups = 8;
  const quad = /:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(text);
  if (quad) {
    if (!(quad[1] ?? '').split('.').every((p) => Number(p) <= 255)) return false;
    text = `${text.slice(0, quad.index)}:`;
    if (text.endsWith('::')) text += '0';
    else text = text.slice(0, -1);
    groups = 6;
  }
  const halves = text.split('::');
  if (halves.length > 2) return false;
  const parts = halves.map((h) => (h === '' ? [] : h.split(':')));
  if (!parts.every((p) => p.every((g) => /^[0-9A-Fa-f]{1,4}$/.test(g)))) return false;
  const count = parts.reduce((n, p) => n + p.length, 0);
  return halves.length === 2 ? count < groups : count === groups;
}

function jwtValid(s: string): boolean {
  const header = s.slice(0, s.indexOf('.'));
  try {
    const parsed: unknown = JSON.parse(Buffer.from(header, 'base64url').toString('utf8'));
    return typeof parsed === 'object' && parsed !== null && 'alg' in parsed;
  } catch {
    return false;
  }
}

/** An AWS secret is 40 base64 characters; demanding upper, lower and a digit or symbol skips hex digests. */
function awsSecretValid(s: string): boolean {
  return /[A-Z]/.test(s) && /[a-z]/.test(s) && /[0-9/+]/.test(s);
}

const AWS_KEY_PREFIX = '(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA|ASCA)';
/** Thirteen digits, each but the first after an optional space or dash (unrolled: much faster than a counted group). */
const THIRTEEN_DIGITS = `[0-9]${'[ -]?[0-9]'.repeat(12)}`;

const OCTET = '(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])';

export const DETECTORS: Readonly<Record<DetectorName, Detector>> = {
  email: {
    name: 'email',
    // Starts only where a run of local-part characters starts: from inside a long run without '@' each
    // start would scan the rest of the run again (quadratic; 100 KB of one letter took 20 s).
    pattern: /(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g,
    mayOccur: (c) => c.at > 0,
    prefilter: { anchor: /@/g, span: 'A-Za-z0-9._%+@\\-' },
  },
  'card-number': {
    name: 'card-number',
    pattern: /(?<![0-9])[0-9](?:[ -]?[0-9]){12,18}(?![0-9])/g,
    mayOccur: (c) => c.digits >= 13,
    prefilter: { anchor: new RegExp(THIRTEEN_DIGITS, 'g'), span: '0-9 \\-' },
    valid: luhnValid,
  },
  'us-ssn': {
    name: 'us-ssn',
    pattern: /(?<![0-9-])[0-9]{3}-[0-9]{2}-[0-9]{4}(?![0-9-])/g,
    mayOccur: (c) => c.digits >= 9 && c.dash >= 2,
    prefilter: { anchor: /[0-9]-[0-9]{2}-[0-9]/g, span: '0-9\\-' },
    valid: ssnValid,
  },
  iban: {
    name: 'iban',
    pattern: /(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])/g,
    mayOccur: (c) => c.length >= 15 && c.digits >= 2 && c.upper >= 2,
    prefilter: { anchor: /[A-Z]{2}[0-9]{2}/g, span: 'A-Za-z0-9 ' },
    valid: ibanValid,
  },
  phone: {
    name: 'phone',
    // E.164 (a leading +, 8 to 15 digits, single separators) or the North American 3-3-4 form.
    pattern: /(?<![\w+])(?:\+[1-9](?:[ .-]?[0-9]){7,14}|(?:\([0-9]{3}\) ?|[0-9]{3}[ .-])[0-9]{3}[ .-][0-9]{4})(?![0-9])/g,
    mayOccur: (c) => c.digits >= 8 && (c.plus > 0 || c.separators >= 2),
    // Either form ends in a separator and four digits, or starts with + and a digit.
    prefilter: { anchor: /\+[1-9]|[ .-][0-9]{4}/g, span: '\\w+ .()\\-' },
  },
  ipv4: {
    name: 'ipv4',
    pattern: new RegExp(`(?<![0-9.])(?:${OCTET}\\.){3}${OCTET}(?![0-9])(?!\\.[0-9])`, 'g'),
    mayOccur: (c) => c.dot >= 3 && c.digits >= 4,
    prefilter: { anchor: /\.[0-9]{1,3}\.[0-9]/g, span: '0-9.' },
  },
  ipv6: {
    name: 'ipv6',
    pattern: /(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9A-Fa-f]{1,4})?(?![0-9A-Fa-f:])/g,
    mayOccur: (c) => c.colon >= 2,
    prefilter: { anchor: /:[0-9A-Fa-f]{0,4}:/g, span: '0-9A-Fa-f:.' },
    valid: ipv6Valid,
  },
  'aws-access-key-id': {
    name: 'aws-access-key-id',
    pattern: new RegExp(`(?<![A-Z0-9])${AWS_KEY_PREFIX}[A-Z2-7]{16}(?![A-Z0-9])`, 'g'),
    mayOccur: (c) => c.length >= 20 && c.upper >= 4,
    prefilter: { anchor: new RegExp(AWS_KEY_PREFIX, 'g'), span: 'A-Z0-9' },
  },
  'aws-secret-access-key': {
    name: 'aws-secret-access-key',
    pattern: /(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])/g,
    mayOccur: (c) => c.upper + c.lower + c.digits + c.plus + c.slash >= 40,
    prefilter: { minRun: 40, span: 'A-Za-z0-9/+=' },
    valid: awsSecretValid,
  },
  jwt: {
    name: 'jwt',
    pattern: /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g,
    mayOccur: (c) => c.upper + c.lower + c.digits >= 20 && c.dot >= 2,
    prefilter: { anchor: /eyJ/g, span: 'A-Za-z0-9_.\\-' },
    valid: jwtValid,
  },
  'pem-private-key': {
    name: 'pem-private-key',
    // A block cut short (no END line) is masked to the end of the value.
    pattern: /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----(?:[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|[\s\S]*$)/g,
    mayOccur: (c) => c.dash >= 10,
  },
};
