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

/** Texts at least this long skip the counting pass: it rules nothing out in them, and the anchors are cheaper. */
export const COUNT_PASS_MAX_CHARS = 1024;

/** A detector's prefilter, compiled: its span as a table over ASCII codes, and how runs are found. */
interface Prefilter {
  readonly span: Uint8Array;
  readonly anchor?: RegExp;
  readonly minRun: number;
}

function compilePrefilter(d: Detector): Prefilter | undefined {
  if (!d.prefilter) return undefined;
  const member = new RegExp(`[${d.prefilter.span}]`);
  const span = new Uint8Array(128);
  for (let c = 0; c < 128; c++) span[c] = member.test(String.fromCharCode(c)) ? 1 : 0;
  return 'anchor' in d.prefilter ? { span, anchor: d.prefilter.anchor, minRun: 1 } : { span, minRun: d.prefilter.minRun };
}

/** The run of span characters around `at` (a span character), as [from, to). */
function runAround(text: string, span: Uint8Array, at: number): [number, number] {
  let from = at;
  let to = at + 1;
  while (from > 0 && span[text.charCodeAt(from - 1)] === 1) from--;
  while (to < text.length && span[text.charCodeAt(to)] === 1) to++;
  return [from, to];
}

/**
 * The runs of span characters in `text` a match may lie in, in order, as [from, to) offsets: around
 * each anchor (its last character is in the run of the match it belongs to), or at least `minRun`
 * long. A run that long holds one of every `minRun`-th character, so only those are looked at until
 * one is in the span. Each search goes on from the end of the run it found.
 */
function candidateRuns(text: string, p: Prefilter): [number, number][] {
  const runs: [number, number][] = [];
  const { anchor, span, minRun } = p;
  if (anchor) {
    anchor.lastIndex = 0;
    for (let m = anchor.exec(text); m !== null; m = anchor.exec(text)) {
      const run = runAround(text, span, m.index + m[0].length - 1);
      runs.push(run);
      anchor.lastIndex = run[1];
    }
    return runs;
  }
  for (let at = minRun - 1; at < text.length; at += minRun) {
    if (span[text.charCodeAt(at)] !== 1) continue;
    const run = runAround(text, span, at);
    if (run[1] - run[0] >= minRun) runs.push(run);
    at = run[1];
  }
  return runs;
}

/**
 * A compiled set of detectors. `scanBytes` is the hot path for result values: one counting pass over
 * the bytes, and only when some detector may occur a decode and its regular expressions. It returns
 * undefined when nothing was found, so clean values cost no allocation.
 */
export class ContentScanner {
  private readonly detectors: readonly Detector[];
  private readonly prefilters: readonly (Prefilter | undefined)[];
  private readonly tally = new Int32Array(CLASS_COUNT);
  private readonly counts: CharacterCounts = { length: 0, digits: 0, upper: 0, lower: 0, slash: 0, at: 0, colon: 0, dot: 0, dash: 0, plus: 0, separators: 0 };

  constructor(
    names: readonly DetectorName[],
    private readonly mask: (match: string) => string,
  ) {
    this.detectors = DETECTOR_NAMES.filter((n) => names.includes(n)).map((n) => DETECTORS[n]);
    this.prefilters = this.detectors.map(compilePrefilter);
  }

  get empty(): boolean {
    return this.detectors.length === 0;
  }

  /** The masked text of `buf[start..end)` (UTF-8), or undefined when no detector matched. */
  scanBytes(buf: Buffer, start: number, end: number): string | undefined {
    if (this.detectors.length === 0 || !this.countBytes(buf, start, end)) return undefined;
    const text = buf.toString('utf8', start, end);
    const masked = this.applyDetectors(text, true);
    return masked === text ? undefined : masked;
  }

  /** The character counts of `text` (as `countBytes` gathers them); false when no detector can match. */
  private countString(text: string): boolean {
    const bytes = Buffer.from(text, 'utf8');
    return this.countBytes(bytes, 0, bytes.length);
  }

  /** `text` with every detected value masked (the same string when nothing matched). */
  scanString(text: string): string {
    if (this.detectors.length === 0) return text;
    if (text.length >= COUNT_PASS_MAX_CHARS) return this.applyDetectors(text, false);
    return this.countString(text) ? this.applyDetectors(text, true) : text;
  }

  /**
   * Where detected values are in `text` (UTF-16 offsets), possibly overlapping; only those of
   * detectors whose values may span lines (no prefilter) when `lineSpanningOnly`.
   */
  matchRanges(text: string, lineSpanningOnly = false): [number, number][] {
    const ranges: [number, number][] = [];
    if (this.detectors.length === 0) return ranges;
    const counted = text.length < COUNT_PASS_MAX_CHARS;
    if (counted && !this.countString(text)) return ranges;
    this.detectors.forEach((d, i) => {
      const prefilter = this.prefilters[i];
      if ((counted && !d.mayOccur(this.counts)) || (lineSpanningOnly && prefilter)) return;
      const found = (part: string, offset: number): void => {
        for (const m of part.matchAll(d.pattern)) if (!d.valid || d.valid(m[0])) ranges.push([offset + m.index, offset + m.index + m[0].length]);
      };
      if (!prefilter) return found(text, 0);
      for (const [from, to] of candidateRuns(text, prefilter)) found(text.slice(from, to), from);
    });
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

  /** Each detector in turn over the text the previous ones left; `counted`: `counts` describe the text. */
  private applyDetectors(text: string, counted: boolean): string {
    let out = text;
    this.detectors.forEach((d, i) => {
      if (counted && !d.mayOccur(this.counts)) return;
      const valid = d.valid;
      const replace = (part: string): string => part.replace(d.pattern, (match) => (valid && !valid(match) ? match : this.mask(match)));
      const prefilter = this.prefilters[i];
      if (prefilter) {
        out = replaceInRuns(out, candidateRuns(out, prefilter), replace);
        return;
      }
      d.pattern.lastIndex = 0;
      if (d.pattern.test(out)) out = replace(out);
    });
    return out;
  }
}

/** `text` with each run replaced by `replace` of it (the same string when nothing changed). */
function replaceInRuns(text: string, runs: readonly [number, number][], replace: (run: string) => string): string {
  let out = '';
  let at = 0;
  for (const [from, to] of runs) {
    const run = text.slice(from, to);
    const replaced = replace(run);
    if (replaced === run) continue;
    out += text.slice(at, from) + replaced;
    at = to;
  }
  return at === 0 ? text : out + text.slice(at);
}
