import type { ArgumentRule, NestedJudge } from './argument-rule';
import { longFlags, longValues, parseOptions, shown, type OptionSpec, type ParsedOption } from './command-options';
import { sedScriptWrites } from './sed-script';
import type { ShellWord } from './shell-syntax';

/**
 * Commands with no option that writes a file, changes the system or runs another program: any
 * arguments, even computed ones, keep them reads.
 */
const ANY_ARGUMENTS = [
  'cat', 'tac', 'ls', 'dir', 'wc', 'head', 'tail', 'grep', 'egrep', 'fgrep', 'zcat', 'zgrep', 'stat', 'df', 'du',
  'free', 'uptime', 'whoami', 'id', 'groups', 'uname', 'arch', 'nproc', 'ps', 'pgrep', 'w', 'who', 'last', 'tty',
  'echo', 'true', 'false', 'pwd', 'basename', 'dirname', 'realpath', 'readlink', 'printenv', 'locale',
  'getent', 'which', 'cut', 'tr', 'rev', 'nl', 'fold', 'paste', 'join', 'comm', 'cmp', 'diff', 'seq', 'strings', 'od',
  'hexdump', 'base64', 'md5sum', 'sha1sum', 'sha256sum', 'sha512sum', 'b2sum', 'cksum', 'column', 'expand', 'sleep',
  'lsblk', 'lscpu', 'lsmem', 'lsof', 'findmnt', 'netstat', 'getfacl', 'lsattr', 'namei', 'jq', 'cd', 'test',
] as const;


/** A command whose options are allow-listed, with an optional check of what was parsed. */
function withOptions(spec: OptionSpec, check?: (options: readonly ParsedOption[], operands: readonly ShellWord[], judge: NestedJudge) => string | undefined): ArgumentRule {
  return (args, judge) => {
    const parsed = parseOptions(args, spec);
    if (!parsed.ok) return parsed.reason;
    return check?.(parsed.options, parsed.operands, judge);
  };
}

const has = (options: readonly ParsedOption[], ...names: string[]): boolean => options.some((o) => names.includes(o.name));

/** systemd tools start `less` on a terminal, and `!` in less runs a shell command. */
function pagerOnTerminal(options: readonly ParsedOption[], judge: NestedJudge): string | undefined {
  return judge.pty && !has(options, '--no-pager') ? 'on a terminal it starts a pager that can run shell commands (add --no-pager)' : undefined;
}

const sort = withOptions({
  // -o/--output writes a file and --compress-program runs one: neither is here.
  flags: 'bdfgiMhnRrVcCsumz',
  withValue: 'kStT',
  long: {
    ...longFlags('ignore-leading-blanks', 'dictionary-order', 'ignore-case', 'general-numeric-sort', 'ignore-nonprinting', 'month-sort', 'human-numeric-sort',
      'numeric-sort', 'random-sort', 'reverse', 'version-sort', 'check', 'unique', 'stable', 'zero-terminated', 'merge', 'debug'),
    ...longValues('key', 'field-separator', 'buffer-size', 'temporary-directory', 'parallel', 'batch-size', 'files0-from', 'sort', 'random-source'),
  },
});

const uniq = withOptions(
  { flags: 'cdDiuz', withValue: 'fsw', long: { ...longFlags('count', 'repeated', 'ignore-case', 'unique', 'zero-terminated'), ...longValues('skip-fields', 'skip-chars', 'check-chars'), 'all-repeated': 'optional', group: 'optional' } },
  (_options, operands) => (operands.length > 1 ? 'a second operand is a file it writes' : undefined),
);

const date = withOptions(
  // -s/--set and an operand other than +FORMAT set the clock.
  { flags: 'uR', withValue: 'dfr', optionalValue: 'I', long: { ...longFlags('utc', 'universal', 'rfc-email', 'debug'), ...longValues('date', 'file', 'reference', 'rfc-3339'), 'iso-8601': 'optional' } },
  (_options, operands) => (operands.some((o) => !o.text.startsWith('+')) ? 'an operand other than +FORMAT sets the clock' : undefined),
);

const hostname = withOptions(
  { flags: 'fsiIdaAyV', long: longFlags('fqdn', 'long', 'short', 'ip-address', 'all-ip-addresses', 'domain', 'alias', 'all-fqdns', 'nis', 'yp', 'version') },
  (_options, operands) => (operands.length > 0 ? 'an operand sets the host name' : undefined),
);

const file = withOptions({
  // -C compiles a magic file (writes one); -p resets access times.
  flags: 'bcdEhiklLNnrsSvzZ0',
  withValue: 'eFfmP',
  long: {
    ...longFlags('brief', 'checking-printout', 'extension', 'mime', 'mime-type', 'mime-encoding', 'keep-going', 'list', 'dereference', 'no-dereference', 'no-buffer',
      'no-pad', 'no-sandbox', 'print0', 'raw', 'special-files', 'uncompress', 'uncompress-noreport', 'apple'),
    ...longValues('exclude', 'exclude-quiet', 'files-from', 'separator', 'magic-file', 'parameter'),
  },
});

const dmesg = withOptions({
  // -c/-C clear the ring buffer, -n/-D/-E change console logging, -H starts a pager.
  flags: 'kuxwWLPrdeTt',
  withValue: 'flsF',
  long: {
    ...longFlags('kernel', 'userspace', 'decode', 'follow', 'follow-new', 'raw', 'ctime', 'notime', 'reltime', 'show-delta', 'json', 'nopager', 'syslog', 'force-prefix', 'noescape'),
    ...longValues('level', 'facility', 'buffer-size', 'file', 'since', 'until', 'time-format'),
    color: 'optional',
  },
});

const ss = withOptions({
  // -K/--kill closes sockets and -D/--diag writes a dump file.
  flags: 'hVHOnraloemipsEZzb46tudwxSM0',
  withValue: 'fAFN',
  long: longFlags('numeric', 'resolve', 'all', 'listening', 'options', 'extended', 'memory', 'processes', 'info', 'summary', 'tcp', 'udp', 'unix', 'raw', 'no-header', 'oneline'),
});

/** `journalctl -b -1` and `-n 20`: an offset in the next word belongs to the option (journalctl reads it so). */
const JOURNAL_OPTIONAL_NEXT = new Set(['-b', '--boot', '-n', '--lines']);
const JOURNAL_OFFSET = /^(?:[+-]?[0-9]+|[0-9a-fA-F]{32}|all)$/;

const journalOptions: OptionSpec = {
  // Not here: --vacuum-*, --rotate, --flush, --sync, --relinquish-var, --setup-keys, --update-catalog, --cursor-file,
  // and --image (mounts a disk image) and -M (another machine).
  flags: 'aefrxqmklNh',
  withValue: 'uUtTpoSgcDiF',
  optionalValue: 'nb',
  long: {
    ...longFlags('all', 'follow', 'pager-end', 'reverse', 'catalog', 'quiet', 'merge', 'dmesg', 'full', 'no-full', 'fields', 'no-pager', 'no-hostname', 'no-tail',
      'utc', 'list-boots', 'disk-usage', 'header', 'system', 'user', 'show-cursor', 'verify', 'list-catalog', 'dump-catalog', 'list-namespaces', 'help', 'version'),
    ...longValues('unit', 'user-unit', 'identifier', 'exclude-identifier', 'priority', 'facility', 'output', 'output-fields', 'since', 'until', 'grep', 'cursor',
      'after-cursor', 'directory', 'file', 'root', 'namespace', 'field'),
    lines: 'optional',
    boot: 'optional',
    'case-sensitive': 'optional',
  },
};

const journalctl: ArgumentRule = (args, judge) => {
  const joined: ShellWord[] = [];
  for (let i = 0; i < args.length; i++) {
    const word = args[i] as ShellWord;
    const next = args[i + 1];
    if (word.literal && JOURNAL_OPTIONAL_NEXT.has(word.text) && next?.literal && JOURNAL_OFFSET.test(next.text)) {
      joined.push({ ...word, text: `${word.text}${word.text.startsWith('--') ? '=' : ''}${next.text}` });
      i++;
    } else {
      joined.push(word);
    }
  }
  const parsed = parseOptions(joined, journalOptions);
  return parsed.ok ? pagerOnTerminal(parsed.options, judge) : parsed.reason;
};

/** systemctl verbs that only show state; every other verb (start, enable, edit, kill, ...) changes it. */
const SYSTEMCTL_READ_VERBS = new Set([
  'status', 'show', 'cat', 'list-units', 'list-unit-files', 'list-sockets', 'list-timers', 'list-jobs', 'list-dependencies', 'list-automounts',
  'list-paths', 'list-machines', 'is-active', 'is-enabled', 'is-failed', 'is-system-running', 'show-environment', 'get-default',
]);

const systemctl = withOptions(
  {
    // -H/--host and -M/--machine reach other hosts; --runtime, --now, --force only matter to writing verbs.
    flags: 'alqr',
    withValue: 'tpPno',
    long: {
      ...longFlags('all', 'full', 'quiet', 'recursive', 'no-pager', 'no-legend', 'plain', 'value', 'failed', 'show-types', 'user', 'system', 'no-ask-password',
        'reverse', 'before', 'after', 'with-dependencies', 'version'),
      ...longValues('lines', 'output', 'type', 'state', 'property', 'timestamp', 'legend'),
    },
  },
  (options, operands, judge) => {
    const verb = operands[0]?.text ?? 'list-units';
    if (!SYSTEMCTL_READ_VERBS.has(verb)) return `the verb ${shown(verb)} is not a read`;
    return pagerOnTerminal(options, judge);
  },
);

const awk = withOptions(
  // -f/-i/-l/-E load programs or libraries, -o/-p/-d write files, -e gives program text: none of them here.
  { flags: '', withValue: 'Fv', long: longValues('field-separator', 'assign'), stopAtOperand: true },
  (_options, operands) => {
    const program = operands[0];
    if (program === undefined) return 'no program';
    if (!program.literal) return 'the program is computed when it runs';
    // system(), pipes to and from commands, output redirection and gawk's @load/@include.
    if (/system|[|>@]/.test(program.text)) return 'the program can run commands or write files';
    return undefined;
  },
);

/** sed: `-i` is not an option here; the scripts (from -e, or the first operand) must not write or run commands. */
const sed = withOptions(
  {
    flags: 'nrEsuzb',
    withValue: 'efl',
    long: {
      ...longFlags('quiet', 'silent', 'regexp-extended', 'separate', 'unbuffered', 'null-data', 'posix', 'debug', 'sandbox', 'binary', 'follow-symlinks'),
      ...longValues('expression', 'file', 'line-length'),
    },
  },
  (options, operands) => {
    // GNU sed's --sandbox refuses e, w and r itself.
    if (has(options, '--sandbox')) return undefined;
    if (has(options, '-f', '--file')) return 'a script file cannot be judged';
    const given = options.filter((o) => o.name === '-e' || o.name === '--expression').map((o) => o.value ?? '');
    const scripts = given.length > 0 ? given : operands.slice(0, 1).map((o) => o.text);
    if (scripts.length === 0) return 'no script';
    for (const script of scripts) {
      const writes = sedScriptWrites(script);
      if (writes !== undefined) return writes;
    }
    return undefined;
  },
);

/**
 * `scp -f` (source) sends files to the caller; `scp -t` (sink) receives an upload. scp's getopt
 * stops at the first operand, and with -f given it sends whatever a glob names, so paths may be computed.
 */
const scp = withOptions({ flags: 'tfdrpvq', stopAtOperand: true }, (options, operands, judge) => {
  for (const operand of operands) judge.touches(operand.text);
  const sink = has(options, '-t');
  const source = has(options, '-f');
  if (sink && !source) return `receives an upload into ${shown(operands.map((o) => o.text).join(' '))}`;
  if (source && !sink && operands.length > 0) return undefined;
  return 'is not a server-side download (scp -f PATH)';
});

/**
 * bash's printf builtin assigns with `-v NAME` (`printf -v PATH /tmp` picks the programs that later
 * commands run), so its first argument must be a literal that is not an option.
 */
const printf: ArgumentRule = ([first]) => {
  if (first === undefined || (first.literal && (first.text === '--' || !first.text.startsWith('-')))) return undefined;
  return first.literal ? `option ${shown(first.text)} can assign a variable` : 'the first argument is computed and could be -v';
};

/** Allow-listed commands by name, each with the rule its arguments must pass. */
export const READ_COMMANDS: ReadonlyMap<string, ArgumentRule> = new Map<string, ArgumentRule>([
  ...ANY_ARGUMENTS.map((name): [string, ArgumentRule] => [name, () => undefined]),
  ['printf', printf],
  ['sort', sort],
  ['uniq', uniq],
  ['date', date],
  ['hostname', hostname],
  ['file', file],
  ['dmesg', dmesg],
  ['ss', ss],
  ['journalctl', journalctl],
  ['systemctl', systemctl],
  ['awk', awk],
  ['gawk', awk],
  ['mawk', awk],
  ['nawk', awk],
  ['sed', sed],
  ['scp', scp],
]);
