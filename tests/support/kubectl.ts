import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The real kubectl (KUBECTL overrides the one on PATH). */
export const KUBECTL = process.env.KUBECTL ?? 'kubectl';
/** kubectl's own request timeout in tests: a hung server fails the test instead of the suite. */
export const KUBECTL_REQUEST_TIMEOUT = '20s';

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Environment for kubectl with its discovery cache in a fresh directory (no state shared between runs). */
export function kubectlEnv(kubeconfig: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, KUBECONFIG: kubeconfig, KUBECACHEDIR: mkdtempSync(join(tmpdir(), 'tk-kubecache-')), HOME: process.env.HOME ?? tmpdir(), ...extra };
}

/** Runs kubectl to completion, with `input` on stdin. */
export function kubectl(env: NodeJS.ProcessEnv, args: string[], input?: string): Promise<KubectlResult> {
  return new Promise((resolve) => {
    const child = execFile(KUBECTL, [`--request-timeout=${KUBECTL_REQUEST_TIMEOUT}`, ...args], { env, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
    else child.stdin?.end();
  });
}

/** A long-running kubectl (`-w`, `logs -f`, `exec -i`, `port-forward`) whose output tests wait on. */
export interface KubectlProcess {
  child: ChildProcessWithoutNullStreams;
  output(): string;
  /** Resolves when the combined output matches `expected`; rejects after `timeoutMs`. */
  waitFor(expected: string | RegExp, timeoutMs?: number): Promise<void>;
  exited: Promise<number>;
  stop(): Promise<number>;
}

export function spawnKubectl(env: NodeJS.ProcessEnv, args: string[]): KubectlProcess {
  const child = spawn(KUBECTL, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  const waiters = new Set<() => void>();
  const onData = (d: Buffer): void => {
    out += d.toString('utf8');
    for (const w of waiters) w();
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise<number>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1))));
  const matches = (expected: string | RegExp): boolean => (typeof expected === 'string' ? out.includes(expected) : expected.test(out));
  return {
    child,
    output: () => out,
    waitFor: (expected, timeoutMs = 15_000) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          if (!matches(expected)) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`kubectl ${args.join(' ')}: no ${String(expected)} in ${JSON.stringify(out)}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
    exited,
    stop: () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}
