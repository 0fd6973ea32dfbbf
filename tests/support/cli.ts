import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DevInfo } from '../../local/dev-config';
import { waitFor } from './control-plane';

export const TWOKEY_BIN = join(__dirname, '..', '..', 'cli', 'bin.cjs');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `twokey ARGS` as a real child process. */
export function twokey(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [TWOKEY_BIN, ...args], { env: { ...process.env, ...env }, timeout: 60_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

export interface DevProcess {
  readonly child: ChildProcess;
  readonly info: DevInfo;
  readonly output: () => string;
  stop(): Promise<number | null>;
}

/** Starts `twokey dev --ports auto` in a data dir and waits for its dev.json. */
export async function startDev(dataDir: string, extra: string[] = []): Promise<DevProcess> {
  const child = spawn(process.execPath, [TWOKEY_BIN, 'dev', '--data-dir', dataDir, '--ports', 'auto', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (d) => (output += String(d)));
  child.stderr?.on('data', (d) => (output += String(d)));
  const infoFile = join(dataDir, 'dev.json');
  await waitFor(() => {
    if (child.exitCode !== null) throw new Error(`twokey dev exited early:\n${output}`);
    return existsSync(infoFile) && output.includes('twokey dev is up') ? true : undefined;
  }, 90_000, 'twokey dev');
  const info = JSON.parse(readFileSync(infoFile, 'utf8')) as DevInfo;
  return {
    child,
    info,
    output: () => output,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve(child.exitCode);
        child.once('exit', (code) => resolve(code));
        child.kill('SIGTERM');
      }),
  };
}
