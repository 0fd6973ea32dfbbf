import { globToRegExp } from '../glob';
import type { PolicyMask } from '../policy/schema';
import { DETECTOR_NAMES, type DetectorName } from './detectors';
import { ContentScanner } from './scanner';
import { constantMask, maskerFor, strongerStyle, STYLE_STRENGTH, type MaskStyle } from './styles';

/** Marks a source column that cannot be known: every rule applies to it. */
export const UNKNOWN_SOURCE = '?';
const MAX_CACHED_COLUMNS = 10_000;

export interface ColumnMask {
  readonly style: MaskStyle;
  readonly strict: boolean;
  readonly rule: string;
  readonly mask: (value: string) => string;
  /** The masked text when every value masks to the same (no need to read the value). */
  readonly constant: string | undefined;
}

/**
 * The masks that apply to one subject on one target, compiled: which source columns
 * (`schema.table.column`) are masked and how, which are strict, and the content scanner for
 * everything else. Built once per policy version and subject, not per row.
 */
export class MaskingProfile {
  readonly scanner: ContentScanner;
  readonly strict: boolean;
  private readonly cache = new Map<string, ColumnMask | null>();
  private readonly scanGlobs: readonly RegExp[] | undefined;

  constructor(
    readonly masks: readonly PolicyMask[],
    private readonly hashKey: Buffer | undefined,
  ) {
    const detectors = new Set<DetectorName>();
    let style: MaskStyle = 'partial';
    let styled = false;
    const scan: RegExp[] = [];
    let scanEverywhere = false;
    for (const m of masks) {
      const names = m.detectors ?? DETECTOR_NAMES;
      for (const d of names) detectors.add(d);
      if (names.length) {
        style = styled ? strongerStyle(style, m.style) : m.style;
        styled = true;
      }
      if (m.scanColumns === undefined) scanEverywhere = true;
      else scan.push(...m.scanColumns.map(globToRegExp));
    }
    this.scanGlobs = scanEverywhere ? undefined : scan;
    this.scanner = new ContentScanner([...detectors], maskerFor(styled ? style : 'full', hashKey));
    this.strict = masks.some((m) => m.strict);
  }

  /** The mask for a source column, or undefined; the strongest style wins when rules overlap. */
  column(source: string): ColumnMask | undefined {
    const cached = this.cache.get(source);
    if (cached !== undefined) return cached ?? undefined;
    let found: ColumnMask | undefined;
    for (const m of this.masks) {
      if (source !== UNKNOWN_SOURCE && !m.columns.some((g) => globToRegExp(g).test(source))) continue;
      if (source === UNKNOWN_SOURCE && m.columns.length === 0) continue;
      const style = found ? strongerStyle(found.style, m.style) : m.style;
      found = { style, strict: m.strict || (found?.strict ?? false), rule: m.name, mask: maskerFor(style, this.hashKey), constant: constantMask(style, this.hashKey) };
    }
    if (this.cache.size >= MAX_CACHED_COLUMNS) this.cache.clear();
    this.cache.set(source, found ?? null);
    return found;
  }

  /**
   * The mask for a value derived from several sources: any masked source masks it. One plain column
   * keeps its rule's style; anything computed is masked in full, or hashed (over the computed value)
   * when the strongest rule hashes: a partial mask of a transformed value would show part of it.
   */
  derived(sources: Iterable<string>, plain: boolean): ColumnMask | undefined {
    let found: ColumnMask | undefined;
    let count = 0;
    for (const s of sources) {
      count++;
      const m = this.column(s);
      if (m) found = found ? { ...(STYLE_STRENGTH[m.style] > STYLE_STRENGTH[found.style] ? m : found), strict: found.strict || m.strict } : m;
    }
    if (!found || (plain && count === 1)) return found;
    const style: MaskStyle = found.style === 'hash' ? 'hash' : 'full';
    return { ...found, style, mask: maskerFor(style, this.hashKey), constant: constantMask(style, this.hashKey) };
  }

  /** One value from a named source: masked by the rule naming it, else by the detectors when they scan that source. */
  maskValue(text: string, source: string): string {
    const rule = this.column(source);
    if (rule) return rule.mask(text);
    return this.scans(source) ? this.scanner.scanString(text) : text;
  }

  /** Whether any rule masks columns (a statement whose reads cannot be traced may then show them). */
  get masksColumns(): boolean {
    return this.column(UNKNOWN_SOURCE) !== undefined;
  }

  /** Whether the detectors run on a column (undefined: a computed column, always scanned). */
  scans(source: string | undefined): boolean {
    if (this.scanner.empty) return false;
    if (source === undefined || !this.scanGlobs) return true;
    return this.scanGlobs.some((g) => g.test(source));
  }
}

/** Whether two mask lists are the same rules (the policy objects are replaced on every update). */
export function sameMasks(a: readonly PolicyMask[], b: readonly PolicyMask[]): boolean {
  return a.length === b.length && a.every((m, i) => m === b[i]);
}
