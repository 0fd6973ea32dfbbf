import { parseShell } from '../../core/ssh/shell-parser';
import { ShellSyntaxError, UnjudgeableShellError, type ShellCommand, type SimpleCommand } from '../../core/ssh/shell-syntax';

const simple = (command: ShellCommand | undefined): SimpleCommand => {
  if (command?.kind !== 'simple') throw new Error('expected a simple command');
  return command;
};
const words = (line: string): [string, boolean][] => simple(parseShell(line)[0]).words.map((w) => [w.text, w.literal]);

describe('parseShell', () => {
  it('removes quotes and escapes the way the shell does', () => {
    expect(words(`echo 'a b' "c \\"d\\" \\$e \\x" f\\ g h''i "" \\'`)).toEqual([
      ['echo', true],
      ['a b', true],
      ['c "d" $e \\x', true],
      ['f g', true],
      ['hi', true],
      ['', true],
      ["'", true],
    ]);
  });

  it('marks words the shell computes, showing them as written', () => {
    expect(words('echo $HOME "$1" ${USER} *.log ~/x {a,b} $(id) `id` <(id) {} -I{}')).toEqual([
      ['echo', true],
      ['$HOME', false],
      ['"$1"', false],
      ['${USER}', false],
      ['*.log', false],
      ['~/x', false],
      ['{a,b}', false],
      ['$(id)', false],
      ['`id`', false],
      ['<(id)', false],
      ['{}', true],
      ['-I{}', true],
    ]);
  });

  it('flattens lists, pipelines and subshells into the commands they run', () => {
    const list = parseShell('a; b && c || d | e & (f; g) |& h\ni');
    expect(list.map((c) => (c.kind === 'simple' ? c.words[0]?.text : `(${c.body.length})`))).toEqual(['a', 'b', 'c', 'd', 'e', '(2)', 'h', 'i']);
  });

  it('separates assignments and redirections from the words', () => {
    const command = simple(parseShell('LANG=C >out 2>&1 cat <in x=1')[0]);
    expect(command.assignments.map((a) => [a.name, a.value.text])).toEqual([['LANG', 'C']]);
    expect(command.words.map((w) => w.text)).toEqual(['cat', 'x=1']);
    expect(command.redirections.map((r) => [r.op, r.target.text])).toEqual([['>', 'out'], ['>&', '1'], ['<', 'in']]);
  });

  it('reads here-document bodies and finds substitutions only in unquoted ones', () => {
    const [expanding, quoted] = parseShell("cat <<A; cat <<'B'\n$(id)\nA\n$(id)\nB\n");
    expect(simple(expanding).redirections[0]?.bodySubstitutions).toHaveLength(1);
    expect(simple(quoted).redirections[0]?.bodySubstitutions).toHaveLength(0);
  });

  it('throws a syntax error for text a shell would not run as written', () => {
    for (const line of ["'", '"', '`', '$(', '(', ')', ';', 'a |', 'a &&', 'a >', '<<A', 'a\\', 'f() { :; }', 'a;;']) {
      expect(() => parseShell(line)).toThrow(ShellSyntaxError);
    }
  });

  it('throws for syntax whose effect depends on run-time values', () => {
    for (const line of ['echo $((1))', 'echo $[1]', '((x))', 'echo ${x:-y}', "echo $'x'"]) {
      expect(() => parseShell(line)).toThrow(UnjudgeableShellError);
    }
  });
});
