import { DETECTORS, DETECTOR_NAMES, type CharacterCounts, type Detector, type DetectorName } from './detectors';

/** Character classes for the counting pass, indexed by byte (UTF-8 continuation bytes count as nothing). */
const enum Cls {
  None = 0,
  Digit,
  Upper,
  At,
  Colon,
  Dot,
  Dash,
  Plus,
  Space,
  Paren,
}
const CLASS_OF_BYTE = new Uint8Array(256);
for (let b = 48; b <= 57; b++) CLASS_OF_BYTE[b] = Cls.Digit;
for (let b = 65; b <= 90; b++) CLASS_OF_BYTE[b] = Cls.Upper;
CLASS_OF_BYTE[64] = Cls.At;
CLASS_OF_BYTE[58] = Cls.Colon;
CLASS_OF_BYTE[46] = Cls.Dot;
CLASS_OF_BYTE[45] = Cls.Dash;
CLASS_OF_BYTE[43] = Cls.Plus;
CLASS_OF_BYTE[32] = Cls.Space;
CLASS_OF_BYTE[40] = Cls.Paren;

/**
 * A compiled set of detectors. `scanBytes` is the hot path for result values: one counting pass over
 * the bytes, and only when some detector may occur a decode and its regular expressions. It returns
 * undefined when nothing was found, so clean values cost no allocation.
 */
export class ContentScanner {
  private readonly detectors: readonly Detector[];
  private readonly counts: CharacterCounts = { length: 0, digits: 0, upper: 0, at: 0, colon: 0, dot: 0, dash: 0, plus: 0, separators: 0 };

  constructor(
    names: readonly DetectorName[],
    private readonly mask: (match: string) => string,
  ) {
    this.detectors = DETECTOR_NAMES.filter((n) => names.includes(n)).map((n) => DETECTORS[n]);
  }

  get empty(): boolean {
    return this.detectors.length === 0;
  }

  /** The masked text of `buf[start..end)` (UTF-8), or undefined when no detector matched. */
  scanBytes(buf: Buffer, start: number, end: number): string | undefined {
    if (this.detectors.length === 0 || !this.countBytes(buf, start, end)) return undefined;
    const text = buf.toString('utf8', start, end);
    const masked = this.applyDetectors(text);
    return masked === text ? undefined : masked;
  }

  /** `text` with every detected value masked (the same string when nothing matched). */
  scanString(text: string): string {
    if (this.detectors.length === 0) return text;
    const bytes = Buffer.from(text, 'utf8');
    return this.countBytes(bytes, 0, bytes.length) ? this.applyDetectors(text) : text;
  }

  /** Where detected values are in `text` (UTF-16 offsets), possibly overlapping. */
  matchRanges(text: string): [number, number][] {
    const ranges: [number, number][] = [];
    const bytes = Buffer.from(text, 'utf8');
    if (this.detectors.length === 0 || !this.countBytes(bytes, 0, bytes.length)) return ranges;
    for (const d of this.detectors) {
      if (!d.mayOccur(this.counts)) continue;
      for (const m of text.matchAll(d.pattern)) {
        if (!d.valid || d.valid(m[0])) ranges.push([m.index, m.index + m[0].length]);
      }
    }
    return ranges;
  }

  /** Fills `counts`; false when no detector can possibly match. */
  private countBytes(buf: Buffer, start: number, end: number): boolean {
    const c = this.counts;
    c.length = end - start;
    c.digits = c.upper = c.at = c.colon = c.dot = c.dash = c.plus = c.separators = 0;
    for (let i = start; i < end; i++) {
      switch (CLASS_OF_BYTE[buf[i] as number]) {
        case Cls.Digit: c.digits++; break;
        case Cls.Upper: c.upper++; break;
        case Cls.At: c.at++; break;
        case Cls.Colon: c.colon++; break;
        case Cls.Dot: c.dot++; c.separators++; break;
        case Cls.Dash: c.dash++; c.separators++; break;
        case Cls.Plus: c.plus++; break;
        case Cls.Space: c.separators++; break;
        case Cls.Paren: c.separators += 2; break;
        default: break;
      }
    }
    for (const d of this.detectors) if (d.mayOccur(c)) return true;
    return false;
  }

  private applyDetectors(text: string): string {
    let out = text;
    for (const d of this.detectors) {
      if (!d.mayOccur(this.counts)) continue;
      d.pattern.lastIndex = 0;
      if (!d.pattern.test(out)) continue;
      const valid = d.valid;
      out = out.replace(d.pattern, (match) => (valid && !valid(match) ? match : this.mask(match)));
    }
    return out;
  }
}
