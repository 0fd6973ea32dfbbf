import type { Socket } from 'node:net';
import pg from 'pg';
import { isLoopback } from '../../net/loopback';
import type { CallerChannel, InProcessChannels } from '../../sessions/channels';

/** Time to open the in-process connection (start-up, token check, the upstream connection). */
export const CALLER_CONNECT_TIMEOUT_MS = 15_000;

/** Where the agent's own Postgres listener for a target accepts connections. */
export interface ListenerAddress {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  /** The listener has TLS and is not on loopback: the connection uses TLS (to this same process). */
  readonly tls: boolean;
}

/** A listener's bound `host:port`, as a connection from this process reaches it (a wildcard bind via loopback). */
export function endpointAddress(endpoint: string): { host: string; port: number } {
  const at = endpoint.lastIndexOf(':');
  const bound = endpoint.slice(0, at);
  const host = bound === '0.0.0.0' ? '127.0.0.1' : bound === '::' || bound === '[::]' ? '::1' : bound;
  return { host, port: Number(endpoint.slice(at + 1)) };
}

/** A Postgres listener's address for the in-process connection. */
export function listenerAddress(endpoint: string, database: string, hasTls: boolean): ListenerAddress {
  const { host, port } = endpointAddress(endpoint);
  return { host, port, database, tls: hasTls && !isLoopback(host) };
}

/**
 * A connection to the agent's own Postgres listener as the caller (their token is the password), so
 * that an MCP tool's SQL takes the same path as psql's: classification, policy, masking, strict
 * masking, approvals and recording are the listener's, not a copy. Errors are the listener's
 * `twokey:` ErrorResponses.
 */
export async function openCallerConnection(address: ListenerAddress, token: string, applicationName: string, channel: { registry: InProcessChannels; is: CallerChannel }): Promise<pg.Client> {
  const client = new pg.Client({
    host: address.host,
    port: address.port,
    database: address.database,
    user: 'mcp',
    password: token,
    application_name: applicationName,
    // The listener is this process: its certificate proves nothing here that the bound socket does not.
    ssl: address.tls ? { rejectUnauthorized: false } : false,
    connectionTimeoutMillis: CALLER_CONNECT_TIMEOUT_MS,
  });
  client.on('error', () => undefined);
  let release = (): void => undefined;
  // Registered when the socket connects (pg has just queued its start-up message): the listener asks only after the token check.
  const connecting = client.connect();
  const stream = (client as unknown as { connection: { stream: Socket } }).connection.stream;
  stream.once('connect', () => (release = channel.registry.register(stream.localAddress ?? '', stream.localPort ?? 0, channel.is)));
  client.once('end', () => release());
  try {
    await connecting;
  } catch (e) {
    release();
    throw e;
  }
  return client;
}

/** Row values one answer keeps at most (an MCP result is one JSON message); later rows are dropped and flagged. */
export const MAX_RESULT_BYTES = 4 * 1024 * 1024;

export interface RowsResult {
  readonly columns: readonly string[];
  /** Values as psql shows them (text; NULL as null), at most `maxRows`. */
  readonly rows: (string | null)[][];
  /** The statement returned more than `maxRows` rows or MAX_RESULT_BYTES of values (the rest read and dropped, never kept). */
  readonly truncated: boolean;
  readonly command: string;
  readonly rowCount: number | null;
}

const AS_TEXT = { getTypeParser: () => (value: string) => value };

/**
 * One statement on the simple query protocol (so the listener classifies exactly this text), rows
 * kept up to `maxRows` and the rest only counted. `onNotice` sees the listener's notices (a held
 * write's request id arrives as one).
 */
export function runStatement(client: pg.Client, sql: string, maxRows: number, onNotice?: (message: string) => void): Promise<RowsResult> {
  const notice = (n: { message?: string }): void => onNotice?.(n.message ?? '');
  client.on('notice', notice);
  return new Promise<RowsResult>((resolve, reject) => {
    const rows: (string | null)[][] = [];
    let truncated = false;
    let bytes = 0;
    const query = new pg.Query({ text: sql, rowMode: 'array', types: AS_TEXT } as pg.QueryConfig);
    query.on('row', (row: (string | null)[]) => {
      if (truncated) return;
      for (const v of row) bytes += v === null ? 0 : v.length;
      if (rows.length < maxRows && bytes <= MAX_RESULT_BYTES) rows.push(row);
      else truncated = true;
    });
    query.on('error', reject);
    query.on('end', (r: pg.QueryResult) => resolve({ columns: r.fields.map((f) => f.name), rows, truncated, command: r.command, rowCount: r.rowCount }));
    client.query(query);
  }).finally(() => client.off('notice', notice));
}
