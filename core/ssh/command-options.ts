import type { ShellWord } from './shell-syntax';

/** How a long option takes its value: never, always (`--x=v` or `--x v`), or only attached (`--x=v`). */
export type LongOption = 'flag' | 'value' | 'optional';

/**
 * The options a command accepts on the read allow-list. Anything not named here makes the command a
 * write: an allow-list, because the options that make a read tool write (`sort -o`, `sed -i`,
 * `journalctl --vacuum-size`) are the ones a deny-list forgets.
 */
export interface OptionSpec {
  /** Short options without a value, e.g. `'lah'`. */
  readonly flags?: string;
  /** Short options with a value, attached (`-n5`) or in the next word (`-n 5`). */
  readonly withValue?: string;
  /** Short options whose value can only be attached (`date -Iseconds`). */
  readonly optionalValue?: string;
  readonly long?: Readonly<Record<string, LongOption>>;
  /**
   * Stop at the first operand (getopt's `+`, used by wrappers such as sudo and env): the rest is a
   * command. Otherwise options are recognised anywhere before `--`, as GNU getopt permutes them.
   */
  readonly stopAtOperand?: boolean;
}

export interface ParsedOption {
  /** `-x` or `--name`. */
  readonly name: string;
  readonly value?: string;
}

export type ParsedOptions =
  | { readonly ok: true; readonly options: readonly ParsedOption[]; readonly operands: readonly ShellWord[] }
  | { readonly ok: false; readonly reason: string };

/** Long options without a value, by name. */
export const longFlags = (...names: string[]): Record<string, LongOption> => Object.fromEntries(names.map((n) => [n, 'flag']));
/** Long options with a value, by name. */
export const longValues = (...names: string[]): Record<string, LongOption> => Object.fromEntries(names.map((n) => [n, 'value']));

const SHOWN_CHARS = 60;

/** Text cut for a reason line: the reviewer sees the whole command elsewhere. */
export function shown(text: string): string {
  return text.length > SHOWN_CHARS ? `${text.slice(0, SHOWN_CHARS)}…` : text;
}

/**
 * Splits arguments into options and operands per `spec`. A computed word (`$X`, a glob) where an
 * option could stand is refused: unquoted, it may split into several words, any of them an option.
 * Commands that stop at their first operand take a computed word as that operand.
 */
export function parseOptions(args: readonly ShellWord[], spec: OptionSpec): ParsedOptions {
  const options: ParsedOption[] = [];
  const operands: ShellWord[] = [];
  const fail = (reason: string): ParsedOptions => ({ ok: false, reason });
  for (let i = 0; i < args.length; i++) {
    const word = args[i] as ShellWord;
    // In stop-at-operand mode a computed word is the first operand: what follows it is not parsed
    // as options here, and the caller judges it (a wrapper's command name must be literal).
    if (!word.literal && spec.stopAtOperand) {
      operands.push(...args.slice(i));
      break;
    }
    if (!word.literal) return fail(`the argument ${shown(word.text)} is computed when it runs`);
    const text = word.text;
    if (text === '--') {
      operands.push(...args.slice(i + 1));
      break;
    }
    if (text.startsWith('--')) {
      const eq = text.indexOf('=');
      const name = eq < 0 ? text.slice(2) : text.slice(2, eq);
      const kind = spec.long && Object.hasOwn(spec.long, name) ? spec.long[name] : undefined;
      if (kind === undefined) return fail(`option --${shown(name)} is not known to be read-only`);
      if (eq >= 0) {
        if (kind === 'flag') return fail(`option --${name} takes no value`);
        options.push({ name: `--${name}`, value: text.slice(eq + 1) });
      } else if (kind === 'value') {
        const value = args[++i];
        if (value === undefined || !value.literal) return fail(`option --${name} needs a literal value`);
        options.push({ name: `--${name}`, value: value.text });
      } else {
        options.push({ name: `--${name}` });
      }
      continue;
    }
    if (text.startsWith('-') && text.length > 1) {
      for (let j = 1; j < text.length; j++) {
        const ch = text[j] as string;
        if (spec.flags?.includes(ch)) {
          options.push({ name: `-${ch}` });
        } else if (spec.withValue?.includes(ch) || spec.optionalValue?.includes(ch)) {
          let value = text.slice(j + 1);
          if (value === '' && spec.withValue?.includes(ch)) {
            const next = args[++i];
            if (next === undefined || !next.literal) return fail(`option -${ch} needs a literal value`);
            value = next.text;
          }
          options.push({ name: `-${ch}`, value });
          break;
        } else {
          return fail(`option -${shown(ch)} is not known to be read-only`);
        }
      }
      continue;
    }
    if (spec.stopAtOperand) {
      operands.push(...args.slice(i));
      break;
    }
    operands.push(word);
  }
  return { ok: true, options, operands };
}
