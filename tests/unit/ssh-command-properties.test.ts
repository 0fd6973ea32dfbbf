import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { classifyCommand } from '../../core/ssh/classify-command';

/** Programs the generator names that the classifier may call reads (bash and dash have some as builtins). */
const READ_NAMES = ['cat', 'ls', 'grep', 'head', 'tail', 'wc', 'sort', 'stat', 'echo', 'printf', 'true', 'pwd'];
const WRITE_NAMES = ['rm', 'tee', 'touch', 'mv', 'python3', 'eval', 'exec', 'export', 'alias'];
const ARGUMENTS = ['a', '-n', '1', '*.log', '$HOME', '"$X"', "'q x'", '{a,b}', '~', '-o', 'out', '--output=out', '-i', 'x\\ y', '"a b"', 'in', '-f', '--', '-x'];
const REDIRECTIONS = ['> out', '>> out', '2>/dev/null', '2>&1', '< in', '<<<x', '>/dev/null', '&>out', '>&2', '1<>f', '>|out', '<&0'];
/** sed scripts, reads and writes, run by the real GNU sed on the seeded file `in` ("input"). */
const SED_SCRIPTS = ['p', 's/in/out/g', 's/in/out/w out', '1e touch', 's/input/touch/e', 'w out', 'W out', '$!N;P;D', '/in/{p;w out\n}', '1a x;w out', 'r a', 'b e;w out', 'y/in/ni/', ':x;N;$!bx', '1r a\nw out'];
const SED_OPTIONS = ['', '-n', '-E', '-i', '--sandbox', '-s', '-e'];
/** awk programs, run by the real awk (mawk here) on the seeded file `in`. */
const AWK_PROGRAMS = ['{print}', '{print $1}', 'BEGIN{system("touch")}', '{print > "out"}', '{print | "touch"}', '{print >> "out"}', 'NR==1{print "x" > "out"}', '{ "touch" | getline x }', 'END{print NR}'];
const SEPARATORS = [';', ' && ', ' || ', ' | ', ' & ', '\n', '|&', ';\n'];
const NOISE = ["'", '"', '\\', '$', '(', ')', '{', '}', '#', ';', '&', '|', '<', '>', '\n', ' ', '`', '\\\n', '*', '~', '=', '$('];
const SEEDED = { a: 'alpha\n', in: 'input\n', 'x.log': 'log\n' } as const;

/** A command name written the ways a shell reads as the same name. */
const quotedName = fc
  .tuple(fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...READ_NAMES) }, { weight: 1, arbitrary: fc.constantFrom(...WRITE_NAMES) }), fc.constantFrom('plain', 'single', 'double', 'escaped', 'split'))
  .map(([name, how]) => {
    if (how === 'single') return `'${name}'`;
    if (how === 'double') return `"${name}"`;
    if (how === 'escaped') return `\\${name}`;
    if (how === 'split') return `${name.slice(0, 1)}''${name.slice(1)}`;
    return name;
  });

const sedCommand = fc
  .tuple(fc.constantFrom(...SED_OPTIONS), fc.constantFrom(...SED_SCRIPTS), fc.constantFrom('in', '< in', 'in a'))
  .map(([option, script, input]) => `sed ${option} '${script}' ${input}`);

const awkCommand = fc
  .tuple(fc.constantFrom('', '-F:', '-v x=1'), fc.constantFrom(...AWK_PROGRAMS), fc.constantFrom('in', '< in'))
  .map(([option, program, input]) => `awk ${option} '${program}' ${input}`);

const { list } = fc.letrec<{ command: string; simple: string; substitution: string; wrapped: string; list: string }>((tie) => ({
  command: fc
    .oneof({ weight: 6, arbitrary: tie('simple') }, { weight: 1, arbitrary: sedCommand }, { weight: 1, arbitrary: awkCommand }),
  simple: fc
    .tuple(quotedName, fc.array(fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...ARGUMENTS) }, { weight: 1, arbitrary: tie('substitution') }), { maxLength: 3 }), fc.array(fc.constantFrom(...REDIRECTIONS), { maxLength: 2 }))
    .map(([name, args, redirections]) => [name, ...args, ...redirections].join(' ')),
  substitution: fc.tuple(fc.constantFrom('$(%)', '`%`', '<(%)', '"$(%)"'), tie('command')).map(([form, inner]) => form.replace('%', inner)),
  wrapped: fc.tuple(fc.constantFrom("sh -c '%'", "bash -c '%'", 'nice %', 'timeout 5 %', 'env LANG=C %', '(%)', 'LANG=C %'), tie('command')).map(([form, inner]) => form.replace('%', inner)),
  list: fc
    .array(fc.tuple(fc.oneof({ weight: 3, arbitrary: tie('command') }, { weight: 1, arbitrary: tie('wrapped') }), fc.constantFrom(...SEPARATORS)), { minLength: 1, maxLength: 3 })
    .map((parts) => parts.map(([command, separator], i) => (i === parts.length - 1 ? command : command + separator)).join('')),
}));

/** Shell-like lines, some with a here-document, and half of them with a few characters inserted anywhere. */
const shellLine = fc
  .tuple(list, fc.option(fc.tuple(fc.constantFrom('<<E', "<<'E'", '<<-E'), list)), fc.oneof(fc.constant([]), fc.array(fc.tuple(fc.nat(), fc.constantFrom(...NOISE)), { maxLength: 3 })))
  .map(([line, hereDoc, noise]) => {
    let text = hereDoc ? `${line}\ncat ${hereDoc[0]}\n${hereDoc[1]}\nE` : line;
    for (const [at, insert] of noise) {
      const i = at % (text.length + 1);
      text = text.slice(0, i) + insert + text.slice(i);
    }
    return text;
  });

/**
 * A sandbox where every program the generator names is a stub that logs its name: PATH holds only
 * the stubs and the real shells and wrappers, which find the stubs through it.
 */
class StubSandbox {
  readonly root = mkdtempSync(join(tmpdir(), 'twokey-ssh-classify-'));
  private readonly bin = join(this.root, 'bin');
  private readonly work = join(this.root, 'work');
  private readonly log = join(this.root, 'programs.log');

  constructor() {
    mkdirSync(this.bin);
    for (const name of [...READ_NAMES, ...WRITE_NAMES]) {
      const stub = join(this.bin, name);
      writeFileSync(stub, `#!/bin/sh\nprintf '%s\\n' ${name} >> '${this.log}'\n`);
      chmodSync(stub, 0o755);
    }
    for (const [name, real] of [['sh', '/bin/dash'], ['bash', '/bin/bash'], ['nice', '/usr/bin/nice'], ['timeout', '/usr/bin/timeout'], ['env', '/usr/bin/env'], ['sed', '/bin/sed'], ['awk', '/usr/bin/awk']]) {
      symlinkSync(real as string, join(this.bin, name as string));
    }
  }

  /** Runs the line with a shell; returns the programs it started and the files it left changed. */
  run(shell: string, line: string): { programs: string[]; changed: string[] } {
    rmSync(this.work, { recursive: true, force: true });
    mkdirSync(this.work);
    for (const [name, content] of Object.entries(SEEDED)) writeFileSync(join(this.work, name), content);
    writeFileSync(this.log, '');
    spawnSync(shell, ['-c', line], { cwd: this.work, env: { PATH: this.bin, HOME: this.work }, stdio: ['ignore', 'ignore', 'ignore'], timeout: 10_000 });
    const programs = readFileSync(this.log, 'utf8').split('\n').filter(Boolean);
    const changed = readdirSync(this.work).filter((f) => !(f in SEEDED) || readFileSync(join(this.work, f), 'utf8') !== SEEDED[f as keyof typeof SEEDED]);
    return { programs, changed };
  }

  close(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

describe('classifyCommand properties', () => {
  let sandbox: StubSandbox;
  beforeAll(() => {
    sandbox = new StubSandbox();
  });
  afterAll(() => sandbox.close());

  it('agrees with bash and dash: a line it calls a read starts only allow-listed programs and changes no file', () => {
    let reads = 0;
    fc.assert(
      fc.property(shellLine, (line) => {
        if (classifyCommand(line, { pty: false }).class !== 'read') return;
        reads++;
        for (const shell of ['/bin/bash', '/bin/dash']) {
          const { programs, changed } = sandbox.run(shell, line);
          expect({ shell, line, programs: programs.filter((p) => !READ_NAMES.includes(p)), changed }).toEqual({ shell, line, programs: [], changed: [] });
        }
      }),
      { numRuns: 600 },
    );
    // The property says something only if the generator reaches reads often enough (72 to 111 of 600 over 40 seeds).
    expect(reads).toBeGreaterThan(40);
  }, 300_000);

  it('never throws, whatever the text', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 200 }), fc.string({ unit: fc.constantFrom(...NOISE, 'a', 'cat', 'rm', '\t', '-'), maxLength: 60 })), (text) => {
        const result = classifyCommand(text);
        expect(['read', 'write', 'unknown']).toContain(result.class);
      }),
      { numRuns: 2_000 },
    );
  });

  it('keeps a read line from hiding a write placed after it on a new line or before it', () => {
    fc.assert(
      fc.property(shellLine, (line) => {
        fc.pre(classifyCommand(line, { pty: false }).class === 'read');
        expect(classifyCommand(`${line}\nrm -rf x`, { pty: false }).class).not.toBe('read');
        expect(classifyCommand(`rm -rf x; ${line}`, { pty: false }).class).not.toBe('read');
      }),
      { numRuns: 200 },
    );
  });

  it('reads any single-quoted arguments back as the words they quote', () => {
    const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 20 }).filter((s) => !s.includes('\0')), { maxLength: 5 }), (args) => {
        const result = classifyCommand(['cat', ...args.map(quote)].join(' '), { pty: false });
        expect(result).toMatchObject({ class: 'read', commands: [['cat', ...args].join(' ')] });
      }),
    );
  });

  it('sees rm however its letters are quoted or escaped', () => {
    const letter = (ch: string): fc.Arbitrary<string> => fc.constantFrom(ch, `'${ch}'`, `"${ch}"`, `\\${ch}`, `${ch}""`, `''${ch}`);
    fc.assert(
      fc.property(letter('r'), letter('m'), (r, m) => {
        const result = classifyCommand(`${r}${m} -rf /`, { pty: false });
        expect(result).toMatchObject({ class: 'write', commands: ['rm -rf /'] });
      }),
    );
  });
});
