import { computedWord, type ArgumentRule } from './argument-rule';
import { longFlags, longValues, parseOptions, shown, type OptionSpec } from './command-options';
import { ASSIGNMENT_WORD, type ShellWord } from './shell-syntax';

/**
 * Commands that run another command (sudo, env, xargs, find -exec, sh -c, ...): their own options
 * are allow-listed, and what they run is judged like any command, one level deeper.
 */

/**
 * Environment variables a read may set (`LANG=C ls`, `env TZ=UTC date`). Others can load code
 * (LD_PRELOAD, BASH_ENV), pick programs (PATH, PAGER, EDITOR) or change what a later `$NAME` means.
 */
const SAFE_VARIABLES = new Set(['LANG', 'LANGUAGE', 'LC_ALL', 'LC_CTYPE', 'LC_MESSAGES', 'LC_TIME', 'LC_NUMERIC', 'LC_COLLATE', 'TZ', 'COLUMNS', 'LINES', 'NO_COLOR']);
/** Locale names and sizes; `/` only in TZ (zone names), since a locale name with `/` is a path to load. */
const SAFE_VALUE = /^[A-Za-z0-9_.:@+,-]*$/;
const SAFE_TZ_VALUE = /^[A-Za-z0-9_.:@+,/-]*$/;

/** Why setting `name` to `value` for a command is not a read, or undefined when it is harmless. */
export function unsafeAssignment(name: string, value: ShellWord): string | undefined {
  if (!SAFE_VARIABLES.has(name)) return `setting ${shown(name)} can change which program runs or what it loads`;
  if (!value.literal || !(name === 'TZ' ? SAFE_TZ_VALUE : SAFE_VALUE).test(value.text)) return `the value of ${name} is not a plain name`;
  return undefined;
}

/** Leading `NAME=value` operands (env, sudo): checked, and the command that follows them. */
function afterAssignments(operands: readonly ShellWord[]): { reason?: string; command: readonly ShellWord[] } {
  let i = 0;
  for (; i < operands.length; i++) {
    const word = operands[i] as ShellWord;
    const match = word.literal ? ASSIGNMENT_WORD.exec(word.text) : null;
    if (!match?.[1]) break;
    const reason = unsafeAssignment(match[1], { ...word, text: word.text.slice(match[1].length + 1) });
    if (reason !== undefined) return { reason, command: [] };
  }
  return { command: operands.slice(i) };
}

/** A wrapper: its options, then the command it runs (which must be there unless `optionalCommand`). */
function wrapper(spec: OptionSpec, optionalCommand = false, leading = 0): ArgumentRule {
  return (args, judge) => {
    const parsed = parseOptions(args, { ...spec, stopAtOperand: true });
    if (!parsed.ok) return parsed.reason;
    // Fixed operands before the command (timeout's duration) must be literal: a computed one could
    // split into the duration and a different command.
    const fixed = parsed.operands.slice(0, leading);
    if (fixed.length < leading || fixed.some((w) => !w.literal)) return 'its operands are missing or computed';
    const { reason, command } = afterAssignments(parsed.operands.slice(leading));
    if (reason !== undefined) return reason;
    if (command.length === 0) return optionalCommand ? undefined : 'no command to run';
    judge.argv(command);
    return undefined;
  };
}

// sudo -E (keep the caller's environment), -i/-s (shells), -e (edit) and -l/-v/-k are not here.
const sudo = wrapper({ flags: 'nHPS', withValue: 'ugpCTD', long: { ...longFlags('non-interactive', 'set-home', 'preserve-groups', 'stdin'), ...longValues('user', 'group', 'prompt', 'close-from', 'command-timeout', 'chdir') } });
// env -S splits a string into a command line of its own making: not here.
const env = wrapper({ flags: 'i0v', withValue: 'uC', long: { ...longFlags('ignore-environment', 'null', 'debug'), ...longValues('unset', 'chdir') } }, true);
const timeout = wrapper({ flags: 'v', withValue: 'ks', long: { ...longFlags('preserve-status', 'foreground', 'verbose'), ...longValues('kill-after', 'signal') } }, false, 1);
const stdbuf = wrapper({ withValue: 'ioe', long: longValues('input', 'output', 'error') });
const niceWrapper = wrapper({ withValue: 'n', long: longValues('adjustment') }, true);
/** `nice -5 cmd`: the old form of `-n 5`. */
const nice: ArgumentRule = (args, judge) => niceWrapper(args[0]?.literal && /^-[0-9]+$/.test(args[0].text) ? args.slice(1) : args, judge);

/** `command -v NAME` only looks a name up; `command [-p] NAME ...` runs it without functions. */
const command: ArgumentRule = (args, judge) => {
  const parsed = parseOptions(args, { flags: 'pvV', stopAtOperand: true });
  if (!parsed.ok) return parsed.reason;
  if (parsed.options.some((o) => o.name !== '-p')) return undefined;
  if (parsed.operands.length === 0) return undefined;
  judge.argv(parsed.operands);
  return undefined;
};

const XARGS_STDIN = '{arguments from stdin}';

const xargs: ArgumentRule = (args, judge) => {
  const parsed = parseOptions(args, {
    flags: '0rtxp',
    withValue: 'dEILnPsa',
    optionalValue: 'eil',
    long: { ...longFlags('null', 'no-run-if-empty', 'verbose', 'exit', 'interactive', 'show-limits'), ...longValues('delimiter', 'max-args', 'max-procs', 'max-chars', 'arg-file'), eof: 'optional', replace: 'optional', 'max-lines': 'optional' },
    stopAtOperand: true,
  });
  if (!parsed.ok) return parsed.reason;
  const replace = parsed.options.find((o) => o.name === '-I' || o.name === '-i' || o.name === '--replace');
  const placeholder = replace === undefined ? undefined : replace.value || '{}';
  const command = parsed.operands.length > 0 ? parsed.operands : [{ text: 'echo', literal: true, quoted: false, substitutions: [] }];
  const filled = command.map((w) => (placeholder !== undefined && w.text.includes(placeholder) ? computedWord(w.text) : w));
  judge.argv([...filled, computedWord(XARGS_STDIN)]);
  return undefined;
};

/**
 * `set -o` settings that leave a payload meaning what the parser read; `keyword` (-k), for one,
 * turns `NAME=value` arguments anywhere on a line into the command's environment.
 */
const SAFE_SHELL_SETTINGS = new Set(['errexit', 'nounset', 'pipefail', 'xtrace', 'verbose', 'noglob', 'noclobber', 'noexec']);

/** `bash -c 'payload'`: the payload is parsed as shell again; a shell without -c reads a script. */
const shell: ArgumentRule = (args, judge) => {
  const parsed = parseOptions(args, {
    // -i (interactive), -s (script on stdin), --rcfile and --init-file run other code: not here.
    flags: 'ceuxvnflr',
    withValue: 'o',
    long: longFlags('norc', 'noprofile', 'restricted', 'login', 'noediting'),
    stopAtOperand: true,
  });
  if (!parsed.ok) return parsed.reason;
  const setting = parsed.options.find((o) => o.name === '-o' && !SAFE_SHELL_SETTINGS.has(o.value ?? ''));
  if (setting !== undefined) return `-o ${shown(setting.value ?? '')} is not known to leave the payload's meaning alone`;
  if (!parsed.options.some((o) => o.name === '-c')) return 'runs a script from a file or stdin';
  const payload = parsed.operands[0];
  if (payload === undefined) return 'no command after -c';
  if (!payload.literal) return 'the command after -c is computed when it runs';
  judge.script(payload.text);
  return undefined;
};

/** find primaries that take no value / one value; -delete, -fprint*, -fls write and are not here. */
const FIND_NO_VALUE = new Set([
  '-H', '-L', '-P', '-depth', '-d', '-follow', '-ignore_readdir_race', '-noignore_readdir_race', '-mount', '-noleaf', '-xdev', '-daystart', '-warn', '-nowarn',
  '-empty', '-executable', '-false', '-true', '-nogroup', '-nouser', '-readable', '-writable', '-ls', '-print', '-print0', '-prune', '-quit', '-not', '-a',
  '-and', '-o', '-or', '-help', '-version',
]);
const FIND_ONE_VALUE = new Set([
  '-D', '-maxdepth', '-mindepth', '-regextype', '-files0-from', '-amin', '-anewer', '-atime', '-cmin', '-cnewer', '-ctime', '-fstype', '-gid', '-group',
  '-ilname', '-iname', '-inum', '-ipath', '-iregex', '-iwholename', '-links', '-lname', '-mmin', '-mtime', '-name', '-newer', '-path', '-perm', '-regex',
  '-samefile', '-size', '-type', '-uid', '-used', '-user', '-wholename', '-xtype', '-context', '-printf',
]);
const FIND_RUNS = new Set(['-exec', '-execdir', '-ok', '-okdir']);
const FIND_OPTIMISATION = /^-O[0-9]$/;
const FIND_NEWER_XY = /^-newer[aBcmt][aBcmt]$/;

/** find: every primary allow-listed, and what -exec runs judged with `{}` as a computed word. */
const find: ArgumentRule = (args, judge) => {
  for (let i = 0; i < args.length; i++) {
    const word = args[i] as ShellWord;
    if (!word.literal) return `the argument ${shown(word.text)} is computed when it runs`;
    const primary = word.text;
    if (FIND_RUNS.has(primary)) {
      const end = args.findIndex((w, j) => j > i && w.literal && (w.text === ';' || (w.text === '+' && args[j - 1]?.text === '{}')));
      if (end < 0) return `${primary} has no terminating ; or +`;
      const command = args.slice(i + 1, end).map((w) => (w.text.includes('{}') ? computedWord(w.text) : w));
      if (command.length === 0) return `${primary} has no command`;
      judge.argv(command);
      i = end;
    } else if (FIND_ONE_VALUE.has(primary) || FIND_NEWER_XY.test(primary)) {
      const value = args[++i];
      if (value === undefined || !value.literal) return `${primary} needs a literal value`;
    } else if (primary.startsWith('-') && primary.length > 1 && !FIND_NO_VALUE.has(primary) && !FIND_OPTIMISATION.test(primary)) {
      return `${shown(primary)} is not known to be read-only`;
    }
  }
  return undefined;
};

/** Commands that run other commands, by name. */
export const WRAPPERS: ReadonlyMap<string, ArgumentRule> = new Map<string, ArgumentRule>([
  ['sudo', sudo],
  ['env', env],
  ['timeout', timeout],
  ['stdbuf', stdbuf],
  ['nice', nice],
  ['command', command],
  ['xargs', xargs],
  ['find', find],
  ['sh', shell],
  ['bash', shell],
  ['dash', shell],
]);
