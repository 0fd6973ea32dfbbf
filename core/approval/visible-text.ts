/**
 * Text a reviewer reads (statement, parameters, reason, the requester's claims) is written by the
 * requester. Characters that are invisible or change how the text around them is shown (controls, bidi
 * overrides and isolates, zero-width and other default-ignorable characters, unusual spaces, line and
 * paragraph separators, unassigned and private-use code points, lone surrogates) are shown as their
 * escape, `\u202E`, so that what the reviewer sees is what runs.
 */
const SUSPECT = /[\p{C}\p{Z}\p{Default_Ignorable_Code_Point}]/gu;

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`);
}

function escapeOf(ch: string): string {
  const cp = ch.codePointAt(0) ?? 0;
  const hex = cp.toString(16).toUpperCase();
  return cp <= 0xffff ? `\\u${hex.padStart(4, '0')}` : `\\u{${hex}}`;
}

/** Space always passes; tab, newline and CRLF pass only in multi-line text (a statement, a script). */
function passes(text: string, i: number, multiline: boolean): boolean {
  const ch = text[i];
  if (ch === ' ') return true;
  if (!multiline) return false;
  return ch === '\n' || ch === '\t' || (ch === '\r' && text[i + 1] === '\n');
}

function reveal(text: string, multiline: boolean, shown: (s: string) => string, hidden: (escape: string) => string): string {
  let out = '';
  let last = 0;
  for (const m of text.matchAll(SUSPECT)) {
    if (passes(text, m.index, multiline)) continue;
    out += shown(text.slice(last, m.index)) + hidden(escapeOf(m[0]));
    last = m.index + m[0].length;
  }
  return out + shown(text.slice(last));
}

/**
 * A parameter's text value as a SQL literal (quoted, inner quotes doubled), so that a reviewer tells
 * the text 'NULL' from SQL NULL, and sees a value's leading and trailing spaces.
 */
export const quotedValue = (value: string): string => `'${value.replaceAll("'", "''")}'`;

/** For a plain-text mail: hidden characters as `\uXXXX`. */
export function plainVisible(text: string, multiline = false): string {
  return reveal(text, multiline, (s) => s, (e) => e);
}

/** For HTML: escaped, with every hidden character as a highlighted `\uXXXX`. */
export function htmlVisible(text: string, multiline = false): string {
  return reveal(text, multiline, escapeHtml, (e) => `<mark class="hidden-char" title="an invisible or control character">${e}</mark>`);
}

/**
 * A claim shown on one line (a mail subject, a name, a comment): hidden characters and line breaks
 * escaped, then cut to `maxChars` UTF-16 units (what message schemas count) without splitting a pair.
 */
export function oneLine(text: string, maxChars: number): string {
  const visible = plainVisible(text);
  if (visible.length <= maxChars) return visible;
  let out = '';
  for (const ch of visible) {
    if (out.length + ch.length > maxChars - 1) break;
    out += ch;
  }
  return `${out}…`;
}
