import { UNKNOWN_SOURCE, type ColumnMask, type MaskingProfile } from '../../../core/masking/profile';
import { STYLE_STRENGTH } from '../../../core/masking/styles';
import { BodyReader } from '../protocol/reader';
import { FIRST_USER_OID, type PgCatalog } from './catalog';
import type { ResultPlan } from './result-plans';

/** Type OIDs (pg_type.h) whose text form cannot hold a detected value (no @, at most 10 digits, fixed grammar). */
const UNSCANNABLE_TYPES = new Set([16, 21, 23, 26, 28, 29, 700, 701, 1082, 1083, 1114, 1184, 1186, 1266, 2950]);
/** Types whose binary form is the UTF-8 text itself: masked values can be sent in binary. */
const TEXT_TYPES = new Set([18, 19, 25, 114, 142, 705, 1042, 1043]);
const JSONB = 3802;
const INT8 = 20;
const NUMERIC = 1700;

/** What happens to one result column's values. */
export type ColumnAction =
  | { readonly kind: 'pass' }
  | { readonly kind: 'mask'; readonly mask: ColumnMask; readonly constant: Buffer | undefined; readonly binary: boolean; readonly name: string }
  | { readonly kind: 'scan'; readonly type: number; readonly binary: boolean }
  | { readonly kind: 'refuse'; readonly reason: string };

export interface ColumnPlan {
  readonly actions: readonly ColumnAction[];
  /** Nothing to do for any column: rows pass through untouched. */
  readonly passThrough: boolean;
}

export interface FieldDescription {
  readonly name: string;
  readonly tableOid: number;
  readonly attnum: number;
  readonly typeOid: number;
  readonly format: number;
}

/** RowDescription fields (PostgreSQL docs, "Message Formats": RowDescription). */
export function readRowDescription(buf: Buffer, start: number, end: number): FieldDescription[] {
  const r = new BodyReader(buf, start + 5, end);
  const count = r.int16();
  const fields: FieldDescription[] = [];
  for (let i = 0; i < count; i++) {
    const name = r.cstring();
    const tableOid = r.int32() >>> 0;
    const attnum = r.int16();
    const typeOid = r.int32() >>> 0;
    r.int16();
    r.int32();
    fields.push({ name, tableOid, attnum, typeOid, format: r.int16() });
  }
  return fields;
}

/** Relations a description names that the catalog does not know yet (a reload is due first). */
export function unknownRelations(fields: readonly FieldDescription[], catalog: PgCatalog): boolean {
  return fields.some((f) => f.tableOid >= FIRST_USER_OID && !catalog.relation(f.tableOid));
}

/**
 * Decides each column of a result: masked by its source column (through views, by their lineage) and
 * by the statement's lineage (a value computed from a masked column is masked in full), scanned by the
 * detectors, or passed. A column the server names as a user table's column shows that column's value
 * as is; any other (an expression, a system relation) is masked when the statement's lineage of that
 * position reaches a masked column, or, when positions cannot be matched, when any of its outputs does.
 * A column from a relation the catalog cannot name is masked in full; a masked column in binary
 * format is masked only when its type is text, refused otherwise.
 */
export function planColumns(fields: readonly FieldDescription[], profile: MaskingProfile, catalog: PgCatalog, result: ResultPlan): ColumnPlan {
  const byPosition = result.outputs?.length === fields.length ? result.outputs : undefined;
  const actions = fields.map((f, i): ColumnAction => {
    const binary = f.format === 1;
    const fromTable = sourceMask(f, profile, catalog);
    const source = fromTable.source;
    const fromLineage = byPosition ? byPosition[i] : f.tableOid >= FIRST_USER_OID ? undefined : result.fallback;
    const mask = stronger(fromTable.mask, fromLineage);
    if (mask) {
      if (binary && !TEXT_TYPES.has(f.typeOid)) {
        return { kind: 'refuse', reason: `twokey: column "${f.name}" is masked and its type cannot be masked in binary format; request text format` };
      }
      return { kind: 'mask', mask, constant: mask.constant === undefined ? undefined : Buffer.from(mask.constant), binary, name: f.name };
    }
    if (UNSCANNABLE_TYPES.has(f.typeOid) || !profile.scans(source)) return { kind: 'pass' };
    return { kind: 'scan', type: f.typeOid, binary };
  });
  return { actions, passThrough: actions.every((a) => a.kind === 'pass') };
}

function stronger(a: ColumnMask | undefined, b: ColumnMask | undefined): ColumnMask | undefined {
  if (!a || !b) return a ?? b;
  return STYLE_STRENGTH[b.style] > STYLE_STRENGTH[a.style] ? b : a;
}

function sourceMask(f: FieldDescription, profile: MaskingProfile, catalog: PgCatalog): { mask: ColumnMask | undefined; source: string | undefined } {
  if (f.tableOid === 0 || f.tableOid < FIRST_USER_OID) return { mask: undefined, source: undefined };
  const rel = catalog.relation(f.tableOid);
  const column = rel?.attnums.get(f.attnum);
  if (!rel || column === undefined) return { mask: profile.derived([UNKNOWN_SOURCE], false), source: undefined };
  if (rel.view) {
    const out = rel.view.outputs[rel.columns.indexOf(column)];
    return { mask: profile.derived(out?.sources ?? [UNKNOWN_SOURCE], out?.plain ?? false), source: undefined };
  }
  const source = `${rel.schema}.${rel.name}.${column}`;
  return { mask: profile.column(source), source };
}

/**
 * The text a detector should read from a binary value: text types as UTF-8, int8 and numeric decoded
 * (a card number fits in both), jsonb after its version byte, anything else as raw bytes (latin1).
 */
export function binaryAsText(type: number, buf: Buffer, start: number, end: number): string {
  if (TEXT_TYPES.has(type)) return buf.toString('utf8', start, end);
  if (type === JSONB) return buf.toString('utf8', start + 1, end);
  if (type === INT8 && end - start === 8) return buf.readBigInt64BE(start).toString();
  if (type === NUMERIC) return numericDigits(buf, start, end);
  return buf.toString('latin1', start, end);
}

/** The digits of a binary numeric (base-10000 digit groups), enough for a detector to read. */
function numericDigits(buf: Buffer, start: number, end: number): string {
  if (end - start < 8) return '';
  const count = buf.readInt16BE(start);
  let out = '';
  for (let i = 0; i < count && start + 8 + i * 2 + 2 <= end; i++) {
    const group = String(buf.readInt16BE(start + 8 + i * 2));
    out += i === 0 ? group : group.padStart(4, '0');
  }
  return out;
}

export { TEXT_TYPES, JSONB };
