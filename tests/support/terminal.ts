import { spawn } from 'node:child_process';

/** Longest a command under the pseudo-terminal may run before it is killed. */
export const TERMINAL_RUN_TIMEOUT_MS = 25_000;

/**
 * Runs a command under a pseudo-terminal (util-linux `script`), typing each of `lines` once `prompt`
 * has appeared once more than the lines typed so far (a shell's prompt). Resolves with the exit code
 * and everything the terminal showed.
 */
export function underTerminal(command: string, lines: readonly string[], prompt: string, env: NodeJS.ProcessEnv): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('script', ['-qfec', command, '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    let next = 0;
    const typeNext = (): void => {
      const line = lines[next];
      if (line === undefined || output.split(prompt).length - 1 <= next) return;
      next += 1;
      child.stdin.write(`${line}\r`);
    };
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString('utf8');
      typeNext();
    });
    child.stderr.on('data', (d: Buffer) => (output += d.toString('utf8')));
    // A session that never ends fails the test with what the terminal showed, not with Jest's timeout.
    const bound = setTimeout(() => {
      output += `\n[underTerminal: still running after ${TERMINAL_RUN_TIMEOUT_MS} ms, killed; typed ${next} of ${lines.length} lines]`;
      child.kill('SIGKILL');
    }, TERMINAL_RUN_TIMEOUT_MS);
    child.on('exit', (code) => {
      clearTimeout(bound);
      resolve({ code: code ?? 1, output });
    });
  });
}
