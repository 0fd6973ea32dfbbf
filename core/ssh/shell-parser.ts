import {
  ASSIGNMENT_WORD,
  ShellSyntaxError,
  UnjudgeableShellError,
  type Redirection,
  type ShellCommand,
  type ShellList,
  type ShellWord,
  type SimpleCommand,
} from './shell-syntax';

/** Subshells, substitutions and re-parsed payloads (`bash -c`) nested deeper than this are refused. */
export const MAX_SHELL_NESTING_DEPTH = 12;

/** Characters that end an unquoted word (POSIX XCU 2.3 token recognition, plus bash's `&>`/`|&`). */
const METACHARACTERS = new Set([' ', '\t', '\n', ';', '&', '|', '<', '>', '(', ')']);
/** Redirection operators, longest first so that `<<-` is not read as `<<` and `-`. */
const REDIRECTION_OPERATORS = ['<<<', '<<-', '&>>', '<<', '>>', '<>', '<&', '>&', '>|', '&>', '<', '>'] as const;
/** `${...}` forms that only fetch a value: `${NAME}`, `${#NAME}`, positional and special parameters. */
const PLAIN_BRACED_PARAMETER = /^#?(?:[A-Za-z_][A-Za-z0-9_]*|[0-9]+|[@*#?$!-])$/;
const NAME_START = /[A-Za-z_]/;
const NAME_CHAR = /[A-Za-z0-9_]/;
const SPECIAL_PARAMETER = /[0-9@*#?$!-]/;

interface PendingHereDoc {
  readonly delimiter: string;
  readonly stripTabs: boolean;
  readonly expands: boolean;
  readonly depth: number;
  readonly substitutions: ShellList[];
}

/**
 * Parses a command line the way POSIX sh and bash would read it, into the commands it would run.
 * Pure and bounded: nesting is capped, and anything whose reading is uncertain throws
 * `ShellSyntaxError` (or `UnjudgeableShellError` for syntax whose effect depends on run-time values)
 * rather than guessing, because a wrong guess could hide a command from the classifier.
 */
export function parseShell(source: string, depth = 0): ShellList {
  return new ShellParser(source).script(depth);
}

/** An unquoted `{`, then `,` or `..`, then `}`: a scan, not a backtracking regex, on untrusted text. */
function bracesExpand(shape: string): boolean {
  const open = shape.indexOf('{');
  if (open < 0) return false;
  const comma = shape.indexOf(',', open);
  const dots = shape.indexOf('..', open);
  const separator = comma < 0 ? dots : dots < 0 ? comma : Math.min(comma, dots);
  return separator >= 0 && shape.indexOf('}', separator) >= 0;
}

class ShellParser {
  private pos = 0;
  private readonly pending: PendingHereDoc[] = [];

  constructor(private readonly src: string) {}

  script(depth: number): ShellList {
    const list = this.list(depth, false);
    if (this.pending.length > 0) throw new ShellSyntaxError('a here-document has no body');
    return list;
  }

  /** The text of a here-document body: like a double-quoted string without the closing quote. */
  hereDocBody(depth: number): ShellList[] {
    const substitutions: ShellList[] = [];
    this.expandingText(depth, substitutions, undefined);
    return substitutions;
  }

  private peek(offset = 0): string | undefined {
    return this.src[this.pos + offset];
  }

  private list(depth: number, closing: boolean): ShellCommand[] {
    if (depth > MAX_SHELL_NESTING_DEPTH) throw new ShellSyntaxError('nested too deeply');
    const commands: ShellCommand[] = [];
    let needCommand = false;
    let afterCommand = false;
    for (;;) {
      this.skipBlanks();
      const c = this.peek();
      if (c === undefined) {
        if (closing) throw new ShellSyntaxError('unbalanced parenthesis');
        if (needCommand) throw new ShellSyntaxError('an operator has no command after it');
        return commands;
      }
      if (c === '#') {
        this.skipComment();
      } else if (c === '\n') {
        this.pos++;
        this.readHereDocs(depth);
        afterCommand = false;
      } else if (c === ')') {
        if (!closing || needCommand) throw new ShellSyntaxError('unbalanced parenthesis');
        if (this.pending.some((h) => h.depth === depth)) throw new ShellSyntaxError('a here-document has no body before )');
        this.pos++;
        return commands;
      } else {
        const separator = this.separator();
        if (separator === undefined) {
          commands.push(this.command(depth));
          needCommand = false;
          afterCommand = true;
        } else {
          if (!afterCommand) throw new ShellSyntaxError(`${separator} has no command before it`);
          needCommand = separator !== ';' && separator !== '&';
          afterCommand = false;
        }
      }
    }
  }

  private separator(): string | undefined {
    const two = this.src.slice(this.pos, this.pos + 2);
    if (two === ';;' || two === ';&') throw new ShellSyntaxError(`${two} outside case`);
    if (two === '&&' || two === '||' || two === '|&') {
      this.pos += 2;
      return two;
    }
    const c = this.peek();
    if (c === ';' || c === '|' || (c === '&' && this.peek(1) !== '>')) {
      this.pos++;
      return c;
    }
    return undefined;
  }

  private command(depth: number): ShellCommand {
    if (this.peek() !== '(') return this.simple(depth);
    if (this.peek(1) === '(') throw new UnjudgeableShellError('an arithmetic command (( )) can run code');
    if (this.continuationAt(1)) throw new ShellSyntaxError('a line continuation after (');
    this.pos++;
    const body = this.list(depth + 1, true);
    const redirections: Redirection[] = [];
    for (;;) {
      this.skipBlanks();
      if (this.atCommandEnd()) return { kind: 'subshell', body, redirections };
      const redirection = this.redirection(depth);
      if (!redirection) throw new ShellSyntaxError('a word after a subshell');
      redirections.push(redirection);
    }
  }

  private atCommandEnd(): boolean {
    const c = this.peek();
    return c === undefined || c === '\n' || c === ';' || c === ')' || c === '|' || c === '#' || (c === '&' && this.peek(1) !== '>');
  }

  private simple(depth: number): SimpleCommand {
    const assignments: { name: string; value: ShellWord }[] = [];
    const words: ShellWord[] = [];
    const redirections: Redirection[] = [];
    for (;;) {
      this.skipBlanks();
      if (this.atCommandEnd()) break;
      const redirection = this.redirection(depth);
      if (redirection) {
        redirections.push(redirection);
        continue;
      }
      if (this.peek() === '(') throw new ShellSyntaxError('unexpected ( in a command');
      const { word, source } = this.word(depth);
      const assignment = words.length === 0 ? ASSIGNMENT_WORD.exec(source) : null;
      if (assignment?.[1] !== undefined) {
        const skip = assignment[1].length + 1;
        assignments.push({ name: assignment[1], value: { ...word, text: word.text.slice(skip) } });
      } else {
        words.push(word);
      }
    }
    if (assignments.length + words.length + redirections.length === 0) throw new ShellSyntaxError('an empty command');
    return { kind: 'simple', assignments, words, redirections };
  }

  private redirection(depth: number): Redirection | undefined {
    let i = this.pos;
    while (i < this.src.length && /[0-9]/.test(this.src[i] ?? '')) i++;
    const op = REDIRECTION_OPERATORS.find((o) => this.src.startsWith(o, i));
    if (op === undefined || (i > this.pos && op.startsWith('&'))) return undefined;
    if ((op === '<' || op === '>') && this.src[i + 1] === '(') {
      if (i > this.pos) throw new ShellSyntaxError('a file descriptor before a process substitution');
      return undefined;
    }
    this.pos = i + op.length;
    this.skipBlanks();
    const next = this.peek();
    const processSubstitution = (next === '<' || next === '>') && this.peek(1) === '(';
    if (next === undefined || (METACHARACTERS.has(next) && !processSubstitution)) throw new ShellSyntaxError(`${op} has no target`);
    const { word } = this.word(depth);
    if (op !== '<<' && op !== '<<-') return { op, target: word, bodySubstitutions: [] };
    if (!word.literal) throw new ShellSyntaxError('a here-document delimiter with expansions');
    const hereDoc: PendingHereDoc = { delimiter: word.text, stripTabs: op === '<<-', expands: !word.quoted, depth, substitutions: [] };
    this.pending.push(hereDoc);
    return { op, target: word, bodySubstitutions: hereDoc.substitutions };
  }

  /** Reads the bodies of here-documents begun on the line that just ended (XCU 2.7.4). */
  private readHereDocs(depth: number): void {
    if (this.pending.some((h) => h.depth !== depth)) throw new ShellSyntaxError('a here-document spans a substitution');
    for (const hereDoc of this.pending.splice(0)) {
      const lines: string[] = [];
      for (;;) {
        if (this.pos >= this.src.length) throw new ShellSyntaxError(`here-document ${hereDoc.delimiter} is not terminated`);
        const newline = this.src.indexOf('\n', this.pos);
        const end = newline < 0 ? this.src.length : newline;
        const raw = this.src.slice(this.pos, end);
        this.pos = newline < 0 ? end : end + 1;
        const line = hereDoc.stripTabs ? raw.replace(/^\t+/, '') : raw;
        if (line === hereDoc.delimiter) break;
        // An expanding body joins a line ending in a backslash to the next, which moves where the
        // delimiter is found; shells differ in the details, so such a body is not guessed at.
        if (hereDoc.expands && line.endsWith('\\')) throw new ShellSyntaxError('a line continuation in a here-document');
        lines.push(line);
      }
      if (hereDoc.expands) hereDoc.substitutions.push(...new ShellParser(lines.join('\n')).hereDocBody(depth + 1));
    }
  }

  private word(depth: number): { word: ShellWord; source: string } {
    const start = this.pos;
    const substitutions: ShellList[] = [];
    const first = this.peek();
    if ((first === '<' || first === '>') && this.peek(1) === '(') {
      this.pos += 2;
      substitutions.push(this.list(depth + 1, true));
      const after = this.peek();
      if (after !== undefined && !METACHARACTERS.has(after)) throw new ShellSyntaxError('text after a process substitution');
      const source = this.src.slice(start, this.pos);
      return { word: { text: source, literal: false, quoted: false, substitutions }, source };
    }
    let value = '';
    let literal = first !== '~';
    let quoted = false;
    // The unquoted characters in order, quoted ones as NUL: brace expansion needs unquoted `{ , }`.
    let shape = '';
    for (;;) {
      const c = this.peek();
      if (c === undefined || METACHARACTERS.has(c)) break;
      if (c === '\\') {
        const escaped = this.peek(1);
        if (escaped === undefined) throw new ShellSyntaxError('a backslash at the end');
        this.pos += 2;
        if (escaped === '\n') continue;
        value += escaped;
        quoted = true;
      } else if (c === "'") {
        const close = this.src.indexOf("'", this.pos + 1);
        if (close < 0) throw new ShellSyntaxError('an unterminated single quote');
        value += this.src.slice(this.pos + 1, close);
        this.pos = close + 1;
        quoted = true;
      } else if (c === '"') {
        this.pos++;
        const part = this.expandingText(depth, substitutions, '"');
        value += part.value;
        literal &&= part.literal;
        quoted = true;
      } else if (c === '$') {
        if (this.dollar(depth, substitutions, false)) literal = false;
        else {
          value += c;
          this.pos++;
        }
      } else if (c === '`') {
        this.backquoted(depth, substitutions, false);
        literal = false;
      } else {
        if (c === '*' || c === '?' || c === '[') literal = false;
        shape += c;
        value += c;
        this.pos++;
        continue;
      }
      shape += '\0';
    }
    if (this.pos === start) throw new ShellSyntaxError(`unexpected ${first ?? 'end'}`);
    // Brace expansion (bash) turns `{a,b}` and `{1..3}` into several words; `{}` stays literal.
    if (bracesExpand(shape)) literal = false;
    const source = this.src.slice(start, this.pos);
    return { word: { text: literal ? value : source, literal, quoted, substitutions }, source };
  }

  /**
   * Double-quoted text (terminator `"`) or a here-document body (no terminator): backslash escapes
   * only `$`, backquote, backslash, newline (and `"` in quotes); `$` and backquotes expand.
   */
  private expandingText(depth: number, substitutions: ShellList[], terminator: '"' | undefined): { value: string; literal: boolean } {
    let value = '';
    let literal = true;
    for (;;) {
      const c = this.peek();
      if (c === undefined) {
        if (terminator !== undefined) throw new ShellSyntaxError('an unterminated double quote');
        return { value, literal };
      }
      if (c === terminator) {
        this.pos++;
        return { value, literal };
      }
      if (c === '\\') {
        const escaped = this.peek(1);
        if (escaped === '\n') this.pos += 2;
        else if (escaped !== undefined && (escaped === '$' || escaped === '`' || escaped === '\\' || escaped === terminator)) {
          value += escaped;
          this.pos += 2;
        } else {
          value += c;
          this.pos++;
        }
      } else if (c === '$' && this.dollar(depth, substitutions, true)) {
        literal = false;
      } else if (c === '`') {
        this.backquoted(depth, substitutions, terminator !== undefined);
        literal = false;
      } else {
        value += c;
        this.pos++;
      }
    }
  }

  /** A `$` expansion at the cursor: consumes it and returns true, or returns false for a literal `$`. */
  private dollar(depth: number, substitutions: ShellList[], inDoubleQuotes: boolean): boolean {
    const next = this.peek(1);
    if (this.continuationAt(1)) throw new ShellSyntaxError('a line continuation after $');
    if (next === '(') {
      if (this.peek(2) === '(') throw new UnjudgeableShellError('arithmetic expansion $(( )) can run code');
      if (this.continuationAt(2)) throw new ShellSyntaxError('a line continuation after $(');
      this.pos += 2;
      substitutions.push(this.list(depth + 1, true));
      return true;
    }
    if (next === '[') throw new UnjudgeableShellError('arithmetic expansion $[ ] can run code');
    if (next === '{') {
      const close = this.src.indexOf('}', this.pos + 2);
      if (close < 0 || !PLAIN_BRACED_PARAMETER.test(this.src.slice(this.pos + 2, close))) {
        throw new UnjudgeableShellError('a parameter expansion other than ${NAME} can run code or pick a command');
      }
      this.pos = close + 1;
      return true;
    }
    if (!inDoubleQuotes && next === "'") {
      // bash reads $'it\'s' as one word; dash reads $ and a quote that ends at the backslash, so
      // the rest of the line means different commands to the two shells.
      throw new UnjudgeableShellError("$'...' quoting is read differently by bash and sh");
    }
    if (!inDoubleQuotes && next === '"') {
      this.pos += 2;
      this.expandingText(depth, substitutions, '"');
      return true;
    }
    if (next !== undefined && NAME_START.test(next)) {
      this.pos += 2;
      while (NAME_CHAR.test(this.peek() ?? '')) this.pos++;
      return true;
    }
    if (next !== undefined && SPECIAL_PARAMETER.test(next)) {
      this.pos += 2;
      return true;
    }
    return false;
  }

  /** An old-style `...` substitution: its text, with `\``, `\\`, `\$` (and `\"` in quotes) unescaped, is parsed again. */
  private backquoted(depth: number, substitutions: ShellList[], inDoubleQuotes: boolean): void {
    let inner = '';
    let i = this.pos + 1;
    for (;;) {
      const c = this.src[i];
      if (c === undefined) throw new ShellSyntaxError('an unterminated backquote');
      if (c === '`') break;
      const escaped = this.src[i + 1];
      if (c === '\\' && escaped !== undefined && (escaped === '`' || escaped === '\\' || escaped === '$' || (inDoubleQuotes && escaped === '"'))) {
        inner += escaped;
        i += 2;
      } else {
        inner += c;
        i++;
      }
    }
    this.pos = i + 1;
    substitutions.push(new ShellParser(inner).script(depth + 1));
  }

  /**
   * Whether a backslash-newline sits at the offset. The shell deletes these before it reads tokens,
   * so `$\<newline>(` is `$(`; where a continuation would join such a pair the line is not guessed at.
   */
  private continuationAt(offset: number): boolean {
    return this.peek(offset) === '\\' && this.peek(offset + 1) === '\n';
  }

  private skipBlanks(): void {
    for (;;) {
      const c = this.peek();
      if (c === ' ' || c === '\t') this.pos++;
      else if (c === '\\' && this.peek(1) === '\n') this.pos += 2;
      else return;
    }
  }

  private skipComment(): void {
    const newline = this.src.indexOf('\n', this.pos);
    this.pos = newline < 0 ? this.src.length : newline;
  }
}
