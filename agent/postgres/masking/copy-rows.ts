import type { ColumnMask } from '../../../core/masking/profile';
import type { ContentScanner } from '../../../core/masking/scanner';

/**
 * COPY ... TO STDOUT rows (one CopyData message each) in text or CSV format, with masked columns
 * replaced by position and the detectors run over the rest (PostgreSQL docs, "COPY": File Formats).
 */
export interface CopyPlan {
  readonly format: 'text' | 'csv';
  readonly delimiter: string;
  readonly header: boolean;
  /** The mask of each copied column, by position; undefined when the columns are not masked by source. */
  readonly columns: readonly (ColumnMask | undefined)[] | undefined;
}

export function maskCopyRow(plan: CopyPlan, line: string, scanner: ContentScanner): string {
  let out = line;
  if (plan.columns?.some((c) => c !== undefined)) {
    const eol = out.endsWith('\r\n') ? '\r\n' : out.endsWith('\n') ? '\n' : '';
    const body = out.slice(0, out.length - eol.length);
    const fields = plan.format === 'csv' ? splitCsv(body, plan.delimiter) : splitText(body, plan.delimiter);
    out =
      fields
        .map((f, i) => {
          const mask = plan.columns?.[i];
          if (!mask || f.null) return f.raw;
          const masked = mask.mask(f.value);
          return plan.format === 'csv' ? quoteCsv(masked, plan.delimiter) : escapeText(masked, plan.delimiter);
        })
        .join(plan.delimiter) + eol;
  }
  return scanner.scanString(out);
}

interface Field {
  readonly raw: string;
  readonly value: string;
  readonly null: boolean;
}

function splitText(line: string, delimiter: string): Field[] {
  const fields: Field[] = [];
  let start = 0;
  for (let i = 0; i <= line.length; i++) {
    if (i < line.length && line[i] === '\\') {
      i++;
      continue;
    }
    if (i === line.length || line[i] === delimiter) {
      const raw = line.slice(start, i);
      fields.push({ raw, value: unescapeText(raw), null: raw === '\\N' });
      start = i + 1;
    }
  }
  return fields;
}

const TEXT_ESCAPES: Readonly<Record<string, string>> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };

function unescapeText(raw: string): string {
  return raw.replace(/\\(.)/g, (_, c: string) => TEXT_ESCAPES[c] ?? c);
}

function escapeText(value: string, delimiter: string): string {
  let out = '';
  for (const ch of value) {
    if (ch === '\\' || ch === delimiter) out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else out += ch;
  }
  return out;
}

function splitCsv(line: string, delimiter: string): Field[] {
  const fields: Field[] = [];
  let i = 0;
  for (;;) {
    const start = i;
    let value = '';
    let quoted = false;
    if (line[i] === '"') {
      quoted = true;
      i++;
      while (i < line.length) {
        if (line[i] === '"') {
          if (line[i + 1] === '"') {
            value += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        value += line[i];
        i++;
      }
    }
    const next = line.indexOf(delimiter, i);
    const stop = next < 0 ? line.length : next;
    if (!quoted) value = line.slice(start, stop);
    // In CSV an unquoted empty field is NULL; a quoted empty string is not.
    fields.push({ raw: line.slice(start, stop), value, null: !quoted && stop === start });
    if (next < 0) return fields;
    i = next + 1;
  }
}

function quoteCsv(value: string, delimiter: string): string {
  return /["\r\n]/.test(value) || value.includes(delimiter) ? `"${value.replace(/"/g, '""')}"` : value;
}
