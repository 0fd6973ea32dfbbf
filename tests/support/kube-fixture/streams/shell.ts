/**
 * The container side of `exec` and `attach`: a tiny scripted shell. It runs `echo`, `env`, `cat`,
 * `ls`, `pwd`, `hostname`, `whoami`, `true`, `false`, `sleep`, `exit N` and `sh [-c script]`;
 * interactively (stdin) it reads lines, and on a tty it echoes keystrokes and prints a prompt as a
 * terminal would. Anything else is "not found" with exit code 127, as in a real shell.
 */
export interface ShellIo {
  stdout(data: string): void;
  stderr(data: string): void;
}

export interface ShellEnvironment {
  env: Record<string, string>;
  files: ReadonlyMap<string, string>;
  tty: boolean;
}

/** Longest interactive line kept (a terminal's line discipline has a similar bound). */
export const MAX_LINE_CHARS = 4096;
export const PROMPT = '/ # ';
const MAX_SLEEP_MS = 30_000;

const words = (line: string): string[] => [...line.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3] ?? '');

export class Shell {
  private line = '';
  private exitCode: number | undefined;
  private lastStatus = 0;
  private queue: Promise<void> = Promise.resolve();
  private finish: ((code: number) => void) | undefined;

  constructor(
    private readonly environment: ShellEnvironment,
    private readonly io: ShellIo,
  ) {}

  /** Whether `name` is a command this container has (exec of anything else fails in the runtime). */
  static has(name: string | undefined): boolean {
    return name !== undefined && COMMANDS.has(name.replace(/^\/bin\//, ''));
  }

  /** Runs one command line (`;` and `&&` separated); returns the last status. */
  async runLine(line: string): Promise<number> {
    let status = 0;
    for (const part of line.split(/;|&&/).map((p) => p.trim()).filter(Boolean)) {
      status = await this.execute(words(part));
      if (this.exitCode !== undefined) break;
    }
    this.lastStatus = status;
    return status;
  }

  /** Runs one command given as argv, as exec does. */
  async execute([command, ...args]: string[]): Promise<number> {
    const name = command?.replace(/^\/bin\//, '');
    const out = (text: string): void => this.io.stdout(this.environment.tty ? text.replace(/\n/g, '\r\n') : text);
    const err = (text: string): void => (this.environment.tty ? out(text) : this.io.stderr(text));
    const expand = (a: string): string => a.replace(/\$(\w+)/g, (_, v: string) => this.environment.env[v] ?? '');
    switch (name) {
      case undefined:
        return 0;
      case 'echo':
        out(`${args.map(expand).join(' ')}\n`);
        return 0;
      case 'env':
        out(Object.entries(this.environment.env).map(([k, v]) => `${k}=${v}\n`).join(''));
        return 0;
      case 'cat': {
        let status = 0;
        for (const path of args) {
          const content = this.environment.files.get(path);
          if (content === undefined) {
            err(`cat: can't open '${path}': No such file or directory\n`);
            status = 1;
          } else out(content);
        }
        return status;
      }
      case 'ls': {
        const dir = (args[0] ?? '/').replace(/\/?$/, '/');
        const entries = new Set([...this.environment.files.keys()].filter((p) => p.startsWith(dir)).map((p) => p.slice(dir.length).split('/')[0] ?? ''));
        out([...entries].sort().map((e) => `${e}\n`).join(''));
        return 0;
      }
      case 'pwd':
        out('/\n');
        return 0;
      case 'hostname':
        out(`${this.environment.env.HOSTNAME ?? 'fixture'}\n`);
        return 0;
      case 'whoami':
        out('root\n');
        return 0;
      case 'true':
        return 0;
      case 'false':
        return 1;
      case 'sleep':
        await new Promise((resolve) => setTimeout(resolve, Math.min(Number(args[0] ?? 0) * 1000, MAX_SLEEP_MS)));
        return 0;
      case 'exit':
        this.exitCode = Number(args[0] ?? this.lastStatus) & 0xff;
        return this.exitCode;
      case 'sh':
        if (args[0] === '-c') {
          const status = await this.runLine(args.slice(1).join(' '));
          return this.exitCode ?? status;
        }
        err('sh: a nested interactive shell is not supported\n');
        return 2;
      default:
        err(`sh: ${name}: not found\n`);
        return 127;
    }
  }

  /** Starts reading commands from stdin (`sh` with `-i`); resolves with the shell's exit status. */
  interactive(): Promise<number> {
    if (this.environment.tty) this.io.stdout(PROMPT);
    return new Promise((resolve) => {
      this.finish = resolve;
    });
  }

  input(data: Buffer): void {
    for (const ch of data.toString('utf8')) {
      if (this.exitCode !== undefined) return;
      if (this.environment.tty) this.key(ch);
      else if (ch === '\n') this.submit();
      else if (this.line.length < MAX_LINE_CHARS) this.line += ch;
    }
  }

  /** End of stdin: a pending line runs, then the shell exits with the last status. */
  endOfInput(): void {
    if (this.line) this.submit();
    this.queue = this.queue.then(() => this.finish?.(this.exitCode ?? this.lastStatus));
  }

  private key(ch: string): void {
    switch (ch) {
      case '\r':
      case '\n':
        this.io.stdout('\r\n');
        this.submit();
        return;
      case '\x7f':
      case '\b':
        if (this.line) {
          this.line = this.line.slice(0, -1);
          this.io.stdout('\b \b');
        }
        return;
      case '\x03':
        this.line = '';
        this.io.stdout(`^C\r\n${PROMPT}`);
        return;
      case '\x04':
        if (!this.line) {
          this.io.stdout('\r\n');
          this.endOfInput();
        }
        return;
      default:
        if (this.line.length < MAX_LINE_CHARS) {
          this.line += ch;
          this.io.stdout(ch);
        }
    }
  }

  private submit(): void {
    const line = this.line;
    this.line = '';
    this.queue = this.queue.then(async () => {
      if (this.exitCode !== undefined) return;
      await this.runLine(line);
      if (this.exitCode !== undefined) this.finish?.(this.exitCode);
      else if (this.environment.tty) this.io.stdout(PROMPT);
    });
  }
}

const COMMANDS = new Set(['echo', 'env', 'cat', 'ls', 'pwd', 'hostname', 'whoami', 'true', 'false', 'sleep', 'exit', 'sh']);
