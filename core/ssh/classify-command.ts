import { posix } from 'node:path';
import type { NestedJudge } from './argument-rule';
import { shown } from './command-options';
import { unsafeAssignment, WRAPPERS } from './command-wrappers';
import { READ_COMMANDS } from './read-commands';
import { MAX_SHELL_NESTING_DEPTH, parseShell } from './shell-parser';
import { ShellSyntaxError, UnjudgeableShellError, type Redirection, type ShellList, type ShellWord, type SimpleCommand } from './shell-syntax';

/** Exec command lines longer than this are not parsed (classified `unknown`). */
export const MAX_COMMAND_BYTES = 64 * 1024;
/** Lines that run more simple commands than this (wrapped and substituted ones included) are `unknown`. */
export const MAX_SIMPLE_COMMANDS = 1024;

export type CommandClass = 'read' | 'write' | 'unknown';

export interface CommandClassification {
  readonly class: CommandClass;
  /** Why, naming the first command (or construct) that made it more than a read. */
  readonly reason: string;
  /**
   * Each simple command's argv joined by spaces, including the commands that wrappers and
   * substitutions run (`sudo rm x` gives `sudo rm x` and `rm x`); computed words as written.
   * The whole command line when it could not be parsed.
   */
  readonly commands: readonly string[];
  /** Paths the command is known to write or transfer: output redirections and scp's operands. */
  readonly paths: readonly string[];
}

export interface CommandContext {
  /**
   * Whether the channel has a terminal (an SSH pty-req came first). Defaults to true, the safe
   * assumption: systemd tools start a pager on a terminal, and a pager can run shell commands.
   */
  readonly pty?: boolean;
}

/** Commands that run the program text they are given; named so that the reason says so. */
const INTERPRETERS = new Set(['python', 'python2', 'python3', 'perl', 'ruby', 'node', 'nodejs', 'php', 'lua', 'tclsh', 'Rscript', 'deno', 'bun', 'irb', 'pwsh', 'expect', 'zsh', 'ksh', 'csh', 'tcsh', 'fish', 'busybox']);
/** Where the target's own programs live; any other path (`./cat`, `/tmp/ls`) is someone's program. */
const SYSTEM_PROGRAM = /^(?:\/usr)?\/s?bin\/([^/]+)$/;
/** `2>&1`, `>&-`: duplicating or closing a descriptor opens nothing. */
const DESCRIPTOR = /^(?:[0-9]+|-)$/;
const DISCARD = '/dev/null';
const READ_REDIRECTIONS = new Set(['<', '<<', '<<-', '<<<', '<&']);
const SEVERITY: Record<CommandClass, number> = { read: 0, write: 1, unknown: 2 };

/**
 * Classifies an SSH exec command line (run by the target's shell as `$SHELL -c LINE`). It is a read
 * only if every simple command it can run is on the read allow-list with allowed arguments, nothing
 * writes through a redirection, and every substitution is itself a read; unparseable is `unknown`;
 * everything else is a write. Assumes the read account's shell is bash or sh (dash).
 */
export function classifyCommand(command: string, context: CommandContext = {}): CommandClassification {
  if (Buffer.byteLength(command, 'utf8') > MAX_COMMAND_BYTES) {
    return { class: 'unknown', reason: `longer than ${MAX_COMMAND_BYTES} bytes`, commands: [], paths: [] };
  }
  // sshd hands the line to the shell as a C string: everything after a NUL is not what would run.
  if (command.includes('\0')) return { class: 'unknown', reason: 'contains a NUL byte', commands: [command], paths: [] };
  const judge = new CommandJudge(context.pty ?? true);
  try {
    judge.script(command, 0);
  } catch (error) {
    if (error instanceof ShellSyntaxError) return { class: 'unknown', reason: `cannot be parsed: ${error.message}`, commands: [command], paths: [] };
    if (error instanceof UnjudgeableShellError) return { class: 'write', reason: error.message, commands: [command], paths: [] };
    throw error;
  }
  return judge.result();
}

/** Walks the parsed commands, keeping the most severe verdict and every command it saw. */
class CommandJudge {
  private readonly commands: string[] = [];
  private readonly paths: string[] = [];
  private verdict: { class: CommandClass; reason: string } = { class: 'read', reason: 'every command is on the read allow-list' };

  constructor(private readonly pty: boolean) {}

  result(): CommandClassification {
    return { ...this.verdict, commands: this.commands, paths: this.paths };
  }

  script(text: string, depth: number): void {
    this.list(parseShell(text, depth), depth);
  }

  private note(cls: CommandClass, reason: string): void {
    if (SEVERITY[cls] > SEVERITY[this.verdict.class]) this.verdict = { class: cls, reason };
  }

  private list(list: ShellList, depth: number): void {
    for (const command of list) {
      for (const redirection of command.redirections) this.redirection(redirection, depth);
      if (command.kind === 'subshell') this.list(command.body, depth + 1);
      else this.simple(command, depth);
    }
  }

  private simple(command: SimpleCommand, depth: number): void {
    for (const { name, value } of command.assignments) {
      this.substitutions(value, depth);
      const reason = unsafeAssignment(name, value);
      if (reason !== undefined) this.note('write', reason);
    }
    for (const word of command.words) this.substitutions(word, depth);
    if (command.words.length > 0) this.argv(command.words, depth);
  }

  private substitutions(word: ShellWord, depth: number): void {
    for (const list of word.substitutions) this.list(list, depth + 1);
  }

  private redirection(redirection: Redirection, depth: number): void {
    const { op, target } = redirection;
    this.substitutions(target, depth);
    for (const list of redirection.bodySubstitutions) this.list(list, depth + 1);
    if (READ_REDIRECTIONS.has(op)) return;
    if (op === '>&' && target.literal && DESCRIPTOR.test(target.text)) return;
    if (target.literal && target.text === DISCARD) return;
    this.touches(target.text);
    this.note('write', `${op} ${shown(target.text)} writes a file`);
  }

  /** `//etc/../etc/motd` is `/etc/motd` to a block on `/etc/*`. */
  private touches(path: string): void {
    this.paths.push(posix.normalize(path));
  }

  private argv(words: readonly ShellWord[], depth: number): void {
    if (depth > MAX_SHELL_NESTING_DEPTH) throw new ShellSyntaxError('commands nested too deeply');
    if (this.commands.length >= MAX_SIMPLE_COMMANDS) throw new ShellSyntaxError(`more than ${MAX_SIMPLE_COMMANDS} commands`);
    this.commands.push(words.map((w) => w.text).join(' '));
    const [name, ...args] = words;
    if (name === undefined) return;
    if (!name.literal) return this.note('write', `the command name ${shown(name.text)} is computed when it runs`);
    const program = name.text.includes('/') ? SYSTEM_PROGRAM.exec(name.text)?.[1] : name.text;
    if (program === undefined) return this.note('write', `${shown(name.text)} is not a system program`);
    const rule = READ_COMMANDS.get(program) ?? WRAPPERS.get(program);
    if (rule === undefined) {
      return this.note('write', INTERPRETERS.has(program) ? `${program} runs the program text it is given` : `${shown(program)} is not on the read allow-list`);
    }
    const reason = rule(args, this.nested(depth + 1));
    if (reason !== undefined) this.note('write', `${program}: ${reason}`);
  }

  private nested(depth: number): NestedJudge {
    return {
      pty: this.pty,
      argv: (words) => this.argv(words, depth),
      script: (text) => this.script(text, depth),
      touches: (path) => this.touches(path),
    };
  }
}
