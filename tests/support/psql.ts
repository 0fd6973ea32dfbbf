import { spawn } from 'node:child_process';
import { waitFor } from './control-plane';

export interface InteractivePsql {
  /** Sends one statement and waits until `expect` appears in the output. */
  run(sql: string, expect: string, timeoutMs?: number): Promise<void>;
  output(): string;
  close(): Promise<void>;
}

/** A real psql with its input kept open: one session across many statements. */
export function openPsql(host: string, port: number, user: string, token: string): InteractivePsql {
  const child = spawn('psql', [`host=${host} port=${port} dbname=demo user=${user}`, '-X', '-A', '-t'], { env: { ...process.env, PGPASSWORD: token }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += String(d)));
  child.stderr.on('data', (d) => (out += String(d)));
  return {
    async run(sql, expect, timeoutMs = 10_000) {
      child.stdin.write(`${sql};\n`);
      await waitFor(() => (out.includes(expect) ? true : undefined), timeoutMs, `psql output ${expect}`);
    },
    output: () => out,
    close: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.stdin.end();
      }),
  };
}
