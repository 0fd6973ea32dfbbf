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
      let j = i + 1;
      for (;;) {
        if (j >= n) return undefined; // unterminated: let the parser report it
        const d = sql.charCodeAt(j);
        if (d >= 0x80 || d === 0x5c) return undefined;
        if (d === 0x27) {
          if (sql.charCodeAt(j + 1) === 0x27) {
            j += 2;
            continue;
          }
          break;
        }
        j++;
      }
      out += `${sql.slice(runStart, i)}?`;
      i = j + 1;
      runStart = i;
      continue;
    }
    if (c === 0x22 /* " */) {
      let j = i + 1;
      for (;;) {
        if (j >= n) return undefined;
        const d = sql.charCodeAt(j);
        if (d >= 0x80) return undefined;
        if (d === 0x22) {
          if (sql.charCodeAt(j + 1) === 0x22) {
            j += 2;
            continue;
          }
          break;
        }
        j++;
      }
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
