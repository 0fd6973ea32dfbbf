import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { IDP_LINE_PREFIX } from './oidc-idp';

const IDP_MAIN = join(__dirname, 'oidc-idp-main.ts');
const IDP_ANSWER_TIMEOUT_MS = 30_000;
const IDP_STOP_TIMEOUT_MS = 5_000;

export interface OidcIdpProcess {
  readonly issuer: string;
  /** Replaces the provider's signing key; resolves with the new key id. */
  rotate(): Promise<string>;
  stop(): Promise<void>;
}

/** Starts the local OpenID provider (oidc-idp-main.ts) as a child process; `env` is its configuration. */
export async function spawnOidcIdp(env: Record<string, string>): Promise<OidcIdpProcess> {
  const child = spawn(process.execPath, ['-r', 'tsx/cjs', IDP_MAIN], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const waiters: ((value: Record<string, string>) => void)[] = [];
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += String(d)));
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (line.startsWith(IDP_LINE_PREFIX)) waiters.shift()?.(JSON.parse(line.slice(IDP_LINE_PREFIX.length)) as Record<string, string>);
  });
  const next = (): Promise<Record<string, string>> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the OpenID provider did not answer:\n${stderr}`)), IDP_ANSWER_TIMEOUT_MS);
      waiters.push((v) => {
        clearTimeout(timer);
        resolve(v);
      });
    });
  const { issuer } = await next();
  return {
    issuer: issuer as string,
    rotate: async () => {
      const answer = next();
      child.stdin.write('rotate\n');
      return (await answer).kid as string;
    },
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        const timer = setTimeout(() => child.kill('SIGKILL'), IDP_STOP_TIMEOUT_MS);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}
