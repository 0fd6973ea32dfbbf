/**
 * Reads a sed script (POSIX sed plus GNU's commands) far enough to find what writes: the `w`, `W`
 * and `e` commands and the `s///w` and `s///e` flags. Every argument is taken to end at the first
 * place sed could end it (GNU reads file names and text to the end of the line; this reader stops at
 * `;` too), so that a misreading sees more commands than sed would, never fewer.
 */

const WRITING_COMMANDS: Readonly<Record<string, string>> = { w: 'w writes a file', W: 'W writes a file', e: 'e runs a command' };
/** Commands without an argument, or with an optional number (`l 5`, `q 1`). */
const PLAIN_COMMANDS = new Set(['=', 'd', 'D', 'g', 'G', 'h', 'H', 'n', 'N', 'p', 'P', 'x', 'z', 'F', 'l', 'L', 'q', 'Q', '{', '}']);
/** Commands whose argument is a word: labels and the version. */
const WORD_COMMANDS = new Set(['b', 't', 'T', ':', 'v']);
/** Commands whose argument runs to the end of the line: appended text and files to read. */
const LINE_COMMANDS = new Set(['a', 'i', 'c', 'r', 'R']);
const ADDRESS_CHARS = /[0-9$,~+! \t]/;
const S_FLAGS = /[gpiImM0-9]/;

/** Why the script can write or run something, or undefined when it only reads and prints. */
export function sedScriptWrites(script: string): string | undefined {
  let i = 0;
  const at = (k = 0): string | undefined => script[i + k];
  const skipWhile = (test: (c: string) => boolean): void => {
    while (i < script.length && test(script[i] as string)) i++;
  };
  /** Past the closing delimiter of a regex or replacement; false when the line ends first. */
  const delimited = (delimiter: string): boolean => {
    while (i < script.length) {
      const c = script[i] as string;
      if (c === '\\') i += 2;
      else if (c === '\n') return false;
      else {
        i++;
        if (c === delimiter) return true;
      }
    }
    return false;
  };
  const regexFlags = (): void => skipWhile((c) => c === 'I' || c === 'M');

  while (i < script.length) {
    skipWhile((c) => c === ' ' || c === '\t' || c === ';' || c === '\n');
    if (at() === undefined) break;
    if (at() === '#') {
      skipWhile((c) => c !== '\n');
      continue;
    }
    for (;;) {
      const c = at();
      if (c !== undefined && ADDRESS_CHARS.test(c)) i++;
      else if (c === '/') {
        i++;
        if (!delimited('/')) return 'an unterminated address';
        regexFlags();
      } else if (c === '\\') {
        const delimiter = at(1);
        if (delimiter === undefined || delimiter === '\n' || delimiter === '\\') return 'an unterminated address';
        i += 2;
        if (!delimited(delimiter)) return 'an unterminated address';
        regexFlags();
      } else break;
    }
    const command = at();
    if (command === undefined) return 'an address without a command';
    i++;
    const writes = Object.hasOwn(WRITING_COMMANDS, command) ? WRITING_COMMANDS[command] : undefined;
    if (writes !== undefined) return writes;
    if (PLAIN_COMMANDS.has(command)) {
      skipWhile((c) => c === ' ' || c === '\t' || /[0-9]/.test(c));
    } else if (WORD_COMMANDS.has(command)) {
      skipWhile((c) => c === ' ' || c === '\t');
      skipWhile((c) => !/[\s;}]/.test(c));
    } else if (LINE_COMMANDS.has(command)) {
      skipWhile((c) => c !== ';' && c !== '\n');
    } else if (command === 's' || command === 'y') {
      const delimiter = at();
      if (delimiter === undefined || delimiter === '\n' || delimiter === '\\') return `an unterminated ${command} command`;
      i++;
      if (!delimited(delimiter) || !delimited(delimiter)) return `an unterminated ${command} command`;
      if (command === 's') {
        skipWhile((c) => S_FLAGS.test(c));
        if (at() === 'e') return 's///e runs the pattern space as a command';
        if (at() === 'w') return 's///w writes a file';
      }
    } else {
      return `the sed command ${command} is not known to be read-only`;
    }
  }
  return undefined;
}
