import type { ShellWord } from './shell-syntax';

/** What a command's argument rule may ask of the judge that called it. */
export interface NestedJudge {
  /** Whether the session has a terminal: tools that start a pager on one can run shell commands from it. */
  readonly pty: boolean;
  /** Judges a command that this one runs (sudo's, `find -exec`'s): one level deeper, recorded like any other. */
  argv(words: readonly ShellWord[]): void;
  /** Judges a shell payload (`sh -c '...'`), parsed again one level deeper. */
  script(text: string): void;
  /** A path the command transfers or writes (for policy blocks on paths). */
  touches(path: string): void;
}

/** Judges one allow-listed command's arguments: undefined when they keep it a read, else why not. */
export type ArgumentRule = (args: readonly ShellWord[], judge: NestedJudge) => string | undefined;

/** A word whose value is decided when the command runs (a placeholder `find` or `xargs` fills in). */
export function computedWord(text: string): ShellWord {
  return { text, literal: false, quoted: false, substitutions: [] };
}
