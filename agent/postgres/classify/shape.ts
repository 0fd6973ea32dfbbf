/**
 * The shape of a statement: its text with string and numeric literals replaced by `?`. Two statements
 * with the same shape parse to the same tree but for literal values, so they classify alike.
 *
 * That holds only where this scanner provably agrees with PostgreSQL's lexer (scan.l), so it gives up
 * (returns undefined: parse in full) on anything outside a plain subset: non-ASCII text, backslashes,
 * comments, dollar quotes, escape/bit/national/Unicode strings (a quote right after a letter), and
 * numbers followed by letters. Whitespace is kept verbatim, because PostgreSQL joins string literals
 * separated by a newline but rejects them when separated by spaces only.
 */
export const MAX_SHAPE_INPUT_CHARS = 8 * 1024;

const isIdentChar = (c: number): boolean =>
  (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f || c === 0x24;
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;

/**
 * Index of the quote closing the literal or identifier opened at `open` (a doubled quote is part of
 * it); undefined when unterminated (the parser reports it) or holding what the subset excludes.
 */
function closingQuote(sql: string, open: number, quote: number, refuseBackslash: boolean): number | undefined {
  for (let j = open + 1; j < sql.length; j++) {
    const d = sql.charCodeAt(j);
    if (d >= 0x80 || (refuseBackslash && d === 0x5c)) return undefined;
    if (d !== quote) continue;
    if (sql.charCodeAt(j + 1) !== quote) return j;
    j++;
  }
  return undefined;
}

export function statementShape(sql: string): string | undefined {
  const n = sql.length;
  if (n > MAX_SHAPE_INPUT_CHARS) return undefined;
  let out = '';
  let runStart = 0;
  let i = 0;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c >= 0x80 || c === 0x5c /* \ */) return undefined;
    const prev = i > 0 ? sql.charCodeAt(i - 1) : 0x20;
    if (c === 0x2f /* / */ && sql.charCodeAt(i + 1) === 0x2a) return undefined; // block comment (nests in PostgreSQL)
    if (c === 0x2d /* - */ && sql.charCodeAt(i + 1) === 0x2d) return undefined; // line comment
    if (c === 0x26 /* & */ && (prev === 0x55 || prev === 0x75)) return undefined; // U&'...' and U&"..."
    if (c === 0x24 /* $ */) {
      // $1 parameters are fine; anything else may open a dollar-quoted string.
      if (isIdentChar(prev) || !isDigit(sql.charCodeAt(i + 1))) return undefined;
      i++;
      while (i < n && isDigit(sql.charCodeAt(i))) i++;
      if (i < n && isIdentChar(sql.charCodeAt(i))) return undefined;
      continue;
    }
    if (c === 0x27 /* ' */) {
      if (isIdentChar(prev)) return undefined; // E'..', B'..', X'..', N'..', or a keyword glued to a string
      // Backslashes are literal with standard_conforming_strings, but refusing them keeps the subset simple.
      const j = closingQuote(sql, i, 0x27, true);
      if (j === undefined) return undefined;
      out += `${sql.slice(runStart, i)}?`;
      i = j + 1;
      runStart = i;
      continue;
    }
    if (c === 0x22 /* " */) {
      const j = closingQuote(sql, i, 0x22, false);
      if (j === undefined) return undefined;
      i = j + 1;
      continue;
    }
    if (isDigit(c) && !isIdentChar(prev) && prev !== 0x2e /* . */) {
      let j = i;
      while (j < n && isDigit(sql.charCodeAt(j))) j++;
      if (sql.charCodeAt(j) === 0x2e && isDigit(sql.charCodeAt(j + 1))) {
        j++;
        while (j < n && isDigit(sql.charCodeAt(j))) j++;
      } else if (sql.charCodeAt(j) === 0x2e) return undefined; // "1." and "1..2": leave to the parser
      const e = sql.charCodeAt(j);
      if (e === 0x65 || e === 0x45) return undefined; // exponents: leave to the parser
      if (j < n && (isIdentChar(sql.charCodeAt(j)) || sql.charCodeAt(j) === 0x2e)) return undefined;
      out += `${sql.slice(runStart, i)}?`;
      i = j;
      runStart = i;
      continue;
    }
    i++;
  }
  return out + sql.slice(runStart);
}
