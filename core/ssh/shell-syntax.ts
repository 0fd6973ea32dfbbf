/**
 * The shell syntax tree the command classifier judges: what POSIX sh (and bash) would run, flattened.
 * Separators (`;`, `&&`, `||`, `&`, `|`, newlines) do not matter to a classifier: every command in a
 * list may run, so a list is just its commands.
 */

/** `NAME=value`: an assignment before a command name (XCU 2.9.1), and env's and sudo's operands of that form. */
export const ASSIGNMENT_WORD = /^([A-Za-z_][A-Za-z0-9_]*)=/;

/** One shell word after quote removal, or its source text when expansion decides its value. */
export interface ShellWord {
  /** The value after quote removal when `literal`; otherwise the source text (for people and blocks). */
  readonly text: string;
  /** False when the shell computes the value: parameters, substitutions, unquoted globs, braces, `~`. */
  readonly literal: boolean;
  /** True when any part was quoted or escaped (a here-doc delimiter then turns expansion off). */
  readonly quoted: boolean;
  /** Command and process substitutions inside the word: they run before the command does. */
  readonly substitutions: readonly ShellList[];
}

export interface Redirection {
  /** The operator as written: `<`, `>`, `>>`, `>|`, `<>`, `<&`, `>&`, `&>`, `&>>`, `<<`, `<<-`, `<<<`. */
  readonly op: string;
  /** The target word; for here-docs, the delimiter. */
  readonly target: ShellWord;
  /** Substitutions in a here-doc body whose delimiter was unquoted (the body is expanded). */
  readonly bodySubstitutions: readonly ShellList[];
}

export interface SimpleCommand {
  readonly kind: 'simple';
  /** `NAME=value` words before the command name. */
  readonly assignments: readonly { readonly name: string; readonly value: ShellWord }[];
  readonly words: readonly ShellWord[];
  readonly redirections: readonly Redirection[];
}

export interface Subshell {
  readonly kind: 'subshell';
  readonly body: ShellList;
  readonly redirections: readonly Redirection[];
}

export type ShellCommand = SimpleCommand | Subshell;
export type ShellList = readonly ShellCommand[];

/** Text the parser cannot read the way a shell would (unbalanced quotes, too deep, odd grammar). */
export class ShellSyntaxError extends Error {
  override readonly name = 'ShellSyntaxError';
}

/**
 * Syntax that parses but whose effect cannot be judged statically: arithmetic (bash evaluates
 * variables' values as expressions, which can run command substitutions) and parameter expansions
 * beyond a plain `$NAME`.
 */
export class UnjudgeableShellError extends Error {
  override readonly name = 'UnjudgeableShellError';
}
