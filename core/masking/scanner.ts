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
  Lower,
  Slash,
}
const CLASS_COUNT = Cls.Slash + 1;
const CLASS_OF_BYTE = new Uint8Array(256);
for (let b = 48; b <= 57; b++) CLASS_OF_BYTE[b] = Cls.Digit;
for (let b = 65; b <= 90; b++) CLASS_OF_BYTE[b] = Cls.Upper;
for (let b = 97; b <= 122; b++) CLASS_OF_BYTE[b] = Cls.Lower;
CLASS_OF_BYTE[47] = Cls.Slash;
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
  private readonly tally = new Int32Array(CLASS_COUNT);
  private readonly counts: CharacterCounts = { length: 0, digits: 0, upper: 0, lower: 0, slash: 0, at: 0, colon: 0, dot: 0, dash: 0, plus: 0, separators: 0 };

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
    // One table lookup and one increment per byte, no branches: this runs on every scanned value.
    const tally = this.tally;
    for (let k = 0; k < CLASS_COUNT; k++) tally[k] = 0;
    for (let i = start; i < end; i++) (tally[CLASS_OF_BYTE[buf[i] as number] as number] as number)++;
    const c = this.counts;
    c.length = end - start;
    c.digits = tally[Cls.Digit] as number;
    c.upper = tally[Cls.Upper] as number;
    c.lower = tally[Cls.Lower] as number;
    c.slash = tally[Cls.Slash] as number;
    c.at = tally[Cls.At] as number;
    c.colon = tally[Cls.Colon] as number;
    c.dot = tally[Cls.Dot] as number;
    c.dash = tally[Cls.Dash] as number;
    c.plus = tally[Cls.Plus] as number;
    c.separators = c.dot + c.dash + (tally[Cls.Space] as number) + 2 * (tally[Cls.Paren] as number);
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
