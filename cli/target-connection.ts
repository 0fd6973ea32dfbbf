import pg from 'pg';
import { DEFAULT_DATA_DIR, readDevInfo } from '../local/dev-config';
import { UsageError } from './args';

export interface TargetOptions {
  readonly target?: string;
  readonly host?: string;
  readonly port?: string;
  readonly database?: string;
  readonly token?: string;
  readonly dataDir?: string;
}

/** Where a target's agent listens: --host and --port, or the running dev stack's endpoint for it. */
export async function targetEndpoint(options: Pick<TargetOptions, 'target' | 'host' | 'port' | 'dataDir'>): Promise<{ host: string; port: number; database?: string }> {
  if (!options.target) throw new UsageError('--target is required');
  if (options.host && options.port) return { host: options.host, port: Number(options.port) };
  const info = await readDevInfo(options.dataDir ?? DEFAULT_DATA_DIR);
  const target = info.targets[options.target];
  if (!target?.endpoint) throw new UsageError(`target ${options.target} is not served in this dev stack (or pass --host and --port)`);
  const [h, p] = target.endpoint.split(':');
  return { host: options.host ?? (h as string), port: options.port ? Number(options.port) : Number(p), database: target.database };
}

/** Connects to a target's agent endpoint as the caller (the token is the password), like psql would. */
export async function connectToTarget(options: TargetOptions): Promise<pg.Client> {
  if (!options.target) throw new UsageError('--target is required');
  // A data-plane token, like psql's password: the control plane's API token (TWOKEY_TOKEN) is refused by agents.
  const token = options.token ?? process.env.PGPASSWORD;
  if (!token) throw new UsageError('no token: pass --token or set PGPASSWORD (e.g. PGPASSWORD=$(twokey token --user alice))');
  const endpoint = await targetEndpoint(options);
  const client = new pg.Client({ host: endpoint.host, port: endpoint.port, database: options.database ?? endpoint.database ?? 'postgres', user: process.env.USER || 'twokey', password: token, application_name: 'twokey-cli' });
  await client.connect();
  return client;
}

/** Prints query results as psql's unaligned format would, one block per statement. */
export function printResults(results: pg.QueryResult | pg.QueryResult[]): void {
  for (const r of Array.isArray(results) ? results : [results]) {
    if (r.fields?.length) {
      console.log(r.fields.map((f) => f.name).join('|'));
      for (const row of r.rows as Record<string, unknown>[]) console.log(r.fields.map((f) => formatValue(row[f.name])).join('|'));
      console.log(`(${r.rowCount ?? r.rows.length} row${r.rows.length === 1 ? '' : 's'})`);
    } else if (r.command) console.log(`${r.command}${r.rowCount !== null && r.rowCount !== undefined ? ` ${r.rowCount}` : ''}`);
  }
}

function formatValue(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (v instanceof Date) return v.toISOString();
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}
