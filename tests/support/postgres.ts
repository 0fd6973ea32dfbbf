import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestPostgres {
  readonly port: number;
  readonly adminUrl: string;
  readonly read: { user: string; password: string };
  readonly write: { user: string; password: string };
  stop(): Promise<void>;
}

/** A real PostgreSQL with the demo database, in a child process, on a free port. */
export function startTestPostgres(): Promise<TestPostgres> {
  const dir = mkdtempSync(join(tmpdir(), 'tk-pg-'));
  chmodSync(dir, 0o755); // Postgres runs as the postgres OS user when we are root
  const child: ChildProcess = spawn(process.execPath, ['-r', 'tsx/cjs', join(__dirname, 'postgres-server.ts'), join(dir, 'pg')], {
    stdio: ['pipe', 'pipe', 'pipe'],
    cwd: join(__dirname, '..', '..'),
  });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr?.on('data', (d) => (err += String(d)));
    child.once('exit', (code) => reject(new Error(`postgres helper exited (${code}): ${err}`)));
    child.stdout?.on('data', (d) => {
      out += String(d);
      const line = out.split('\n')[0];
      if (!out.includes('\n') || !line) return;
      const info = JSON.parse(line) as Omit<TestPostgres, 'stop'>;
      resolve({
        ...info,
        // The data directory (about 50 MB) goes with the server.
        stop: () =>
          new Promise<void>((done) => {
            const removed = (): void => {
              rmSync(dir, { recursive: true, force: true });
              done();
            };
            if (child.exitCode !== null) return removed();
            child.once('exit', removed);
            child.stdin?.end();
          }),
      });
    });
  });
}
