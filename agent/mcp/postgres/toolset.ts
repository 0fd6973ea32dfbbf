import type pg from 'pg';
import { z } from 'zod';
import { principalKey, type Identity } from '../../../core/identity/identity';
import { MAX_REASON_CHARS } from '../../../core/tunnel/messages';
import { parsePendingNotice } from '../../approvals/approval-flow';
import type { TargetConfig } from '../../config';
import type { StatementClassifier } from '../../postgres/classify/classifier';
import { sessionMaskingFor, type MaskingSource } from '../../sessions/session-masking';
import type { ToolsetDeps } from '../toolset-deps';
import { MCP_CALL_BUDGET_SECONDS, notServed, refusal, tool, type McpTool, type McpToolset, type Refusal, type ToolCall, type ToolOutcome } from '../tool-registry';
import { openCallerConnection, runStatement, type ListenerAddress, type RowsResult } from './caller-connection';
import { answerWithin, HeldAction, requestStatusTool, withHeldSlot } from '../held-executions';
import { trackedResult } from './tracked-result';
import { ReaderConnections } from './reader-connections';

/** Largest SQL a tool takes (an approval's text is smaller still: MAX_APPROVAL_TEXT_BYTES). */
export const MAX_TOOL_SQL_BYTES = 64 * 1024;
/** Rows a `query` returns at most (and by default); the rest is read, dropped and flagged `truncated`. */
export const MAX_QUERY_ROWS = 1_000;
/** Columns `describe_schema` lists at most. */
export const MAX_SCHEMA_COLUMNS = 5_000;
/** The longest `execute` waits for a decision within one call. */
export const MAX_WAIT_SECONDS = MCP_CALL_BUDGET_SECONDS;
/** The longest a query runs; then its connection is closed. */
export const QUERY_TIMEOUT_MS = MCP_CALL_BUDGET_SECONDS * 1000;
/** Shown as the in-process connection's application_name (recorded with the Postgres session). */
const APPLICATION_NAME = 'twokey-mcp';

/** Text for the wire: a NUL would end it there, so that the listener and the reviewer saw less than the caller sent. */
const NO_NUL: [(s: string) => boolean, string] = [(s) => !s.includes('\0'), 'no NUL characters (PostgreSQL text cannot hold them)'];

const sql = z
  .string()
  .min(1)
  .refine((s) => Buffer.byteLength(s) <= MAX_TOOL_SQL_BYTES, `at most ${MAX_TOOL_SQL_BYTES} bytes`)
  .refine(...NO_NUL)
  .describe('One SQL statement');

/** A Postgres listener's address names its database too; the tools mask and classify as the listener does. */
export interface PostgresToolDeps extends ToolsetDeps<ListenerAddress> {
  readonly masking: MaskingSource;
  readonly classifier: StatementClassifier;
}


/** A database's error as psql would show it; anything else (no connection) as twokey's own. */
function messageOf(e: unknown): string {
  const err = e as { code?: unknown; message?: unknown };
  if (typeof err.code === 'string' && /^[0-9A-Z]{5}$/.test(err.code) && typeof err.message === 'string') return err.message;
  return 'twokey: the target is not reachable through the agent right now';
}

const rowsJson = (r: RowsResult) => ({ command: r.command, row_count: r.rowCount, columns: r.columns, rows: r.rows, truncated: r.truncated });
const rowsSummary = (r: RowsResult): string => `${r.command}${r.rowCount === null ? '' : ` ${r.rowCount}`}; columns: ${r.columns.join(', ') || '(none)'}${r.truncated ? `; truncated at ${r.rows.length} rows` : ''}`;

/** The Postgres tools: `describe_schema`, `query` (reads), `execute` (writes, held for review), `request_status`. */
export function postgresToolset(deps: PostgresToolDeps): McpToolset {
  const reads = (identity: Identity, t: TargetConfig): boolean => deps.decide(identity, t.name, { class: 'read', via: 'mcp' }).kind === 'allow' && deps.addressOf(t.name) !== undefined;
  const writes = (identity: Identity, t: TargetConfig): boolean => deps.decide(identity, t.name, { class: 'write', via: 'mcp' }).kind !== 'deny' && deps.addressOf(t.name) !== undefined;
  const open = (address: ListenerAddress, call: ToolCall): Promise<pg.Client> =>
    openCallerConnection(address, call.token, APPLICATION_NAME, { registry: deps.channels, is: { via: 'mcp', client: call.client } });

  /** Runs `work` on the MCP session's read connection to the target; a failure becomes a tool error. `keep: false` closes the connection. */
  async function withReader(call: ToolCall, work: (client: pg.Client) => Promise<{ value: ToolOutcome; keep: boolean }>): Promise<ToolOutcome> {
    if (!deps.addressOf(call.target.name)) return notServed(call.target.name);
    const readers = call.scope.get(
      'postgres.readers',
      () =>
        new ReaderConnections((target, token) => {
          const address = deps.addressOf(target);
          return address ? open(address, { ...call, token }) : Promise.reject(new Error(`${target} is not served`));
        }),
    );
    try {
      return await readers.use(call.target.name, call.token, work);
    } catch (e) {
      return refusal('deny', messageOf(e));
    }
  }

  /** The one statement's class, or why the tool refuses it before sending. */
  function classOf(text: string): { cls: string } | Refusal {
    const c = deps.classifier.classify(text, true);
    if (c.statementCount !== 1) return refusal('error', 'twokey: send one statement per call (for a script, `twokey exec` runs it as one transaction once approved)');
    return { cls: c.class };
  }

  const describeSchema: McpTool<z.ZodObject<{ schema: z.ZodOptional<z.ZodString> }>> = {
    name: 'describe_schema',
    description: 'Tables and columns of the target database with their types; columns masked for you are marked with how they are masked.',
    args: z.strictObject({ schema: z.string().max(63).optional().describe('Only this schema') }),
    available: reads,
    call: (args, call) =>
      withReader(call, async (client) => {
        const filter = args.schema === undefined ? "NOT IN ('pg_catalog', 'information_schema')" : `= ${client.escapeLiteral(args.schema)}`;
        const r = await runStatement(
          client,
          `SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns WHERE table_schema ${filter} ORDER BY table_schema, table_name, ordinal_position`,
          MAX_SCHEMA_COLUMNS,
        );
        const profile = sessionMaskingFor(deps.masking, call.identity, call.target.name).profile;
        const tables = new Map<string, { schema: string; table: string; columns: { name: string; type: string; masked?: { style: string; strict: boolean } }[] }>();
        for (const [schema, table, column, type] of r.rows) {
          const key = `${schema}.${table}`;
          const entry = tables.get(key) ?? { schema: schema ?? '', table: table ?? '', columns: [] };
          tables.set(key, entry);
          const mask = profile?.column(`${key}.${column}`);
          entry.columns.push({ name: column ?? '', type: type ?? '', ...(mask ? { masked: { style: mask.style, strict: mask.strict } } : {}) });
        }
        return { value: { ok: true, decision: 'allow', result: { tables: [...tables.values()], truncated: r.truncated }, summary: `${tables.size} tables${r.truncated ? ' (truncated)' : ''}` }, keep: true };
      }),
  };

  const query: McpTool<z.ZodObject<{ sql: typeof sql; max_rows: z.ZodOptional<z.ZodNumber> }>> = {
    name: 'query',
    description: `Runs one read-only SQL statement on the read credential; rows come back masked as psql would show them (text values), at most max_rows (default and limit ${MAX_QUERY_ROWS}) with truncated set when there were more.`,
    args: z.strictObject({ sql, max_rows: z.number().int().min(1).max(MAX_QUERY_ROWS).optional() }),
    available: reads,
    async call(args, call) {
      const c = classOf(args.sql);
      if ('ok' in c) return c;
      if (c.cls !== 'read' && c.cls !== 'control') return refusal('deny', `twokey: query runs reads only, and this statement is classified ${c.cls}: use execute`);
      return withReader(call, async (client) => {
        // The listener judges again, with its session's settings: should it hold this for review, or the
        // statement run long, the call ends (closing the connection withdraws the statement) instead of hanging.
        let stop: (why: string) => void = () => undefined;
        const stopped = new Promise<Refusal>((resolve) => (stop = (why) => resolve(refusal('deny', why))));
        const timer = setTimeout(() => stop(`twokey: the query ran longer than ${QUERY_TIMEOUT_MS / 1000}s and was stopped`), QUERY_TIMEOUT_MS);
        const ran = runStatement(client, args.sql, args.max_rows ?? MAX_QUERY_ROWS, (notice) => {
          if (parsePendingNotice(notice)) stop('twokey: this statement needs approval: send it with execute');
        }).then((r): ToolOutcome => ({ ok: true, decision: 'allow', result: rowsJson(r), summary: rowsSummary(r) }));
        try {
          const value = await Promise.race([ran, stopped]);
          // A stopped statement may still run: its connection is not used again.
          return { value, keep: value.ok };
        } finally {
          clearTimeout(timer);
          ran.catch(() => undefined);
        }
      });
    },
  };

  const execute: McpTool<z.ZodObject<{ sql: typeof sql; reason: z.ZodOptional<z.ZodString>; wait_seconds: z.ZodOptional<z.ZodNumber> }>> = {
    name: 'execute',
    description: `Runs one write (INSERT, UPDATE, DDL, ...) as the policy says: at once where writes are allowed, otherwise sent to reviewers. Returns status pending_approval with the request id, reviewer groups and expiry, or with wait_seconds (up to ${MAX_WAIT_SECONDS}) waits for the decision and returns the result. A reason is shown to reviewers.`,
    args: z.strictObject({ sql, reason: z.string().min(1).max(MAX_REASON_CHARS).refine(...NO_NUL).optional(), wait_seconds: z.number().int().min(0).max(MAX_WAIT_SECONDS).optional() }),
    available: writes,
    async call(args, call) {
      const c = classOf(args.sql);
      if ('ok' in c) return c;
      if (c.cls === 'read' || c.cls === 'control') return refusal('error', 'twokey: this statement is a read: use query');
      const principal = principalKey(call.identity);
      const address = deps.addressOf(call.target.name);
      if (!address) return notServed(call.target.name);
      return withHeldSlot(deps.held, principal, async () => {
        let client: pg.Client | undefined;
        try {
          client = await open(address, call);
          // Quoted as the listener reads its own setting (quotes doubled; an E'' literal would go upstream unread).
          if (args.reason !== undefined) await client.query(`SET twokey.reason = '${args.reason.replaceAll("'", "''")}'`);
        } catch (e) {
          void client?.end().catch(() => undefined);
          return refusal('deny', messageOf(e));
        }
        return runExecution(client, args.sql, args.wait_seconds ?? 0, call, principal);
      });
    },
  };

  /**
   * The write on its own connection: a result or refusal before a request is sent is the answer; once
   * the listener says the request is pending, the call waits up to `waitSeconds` and otherwise returns
   * `pending_approval`, while the connection waits on for the decision (and the approved run).
   */
  async function runExecution(client: pg.Client, text: string, waitSeconds: number, call: ToolCall, principal: string): Promise<ToolOutcome> {
    const action = new HeldAction(deps.held, principal, call.target.name);
    const run = runStatement(client, text, MAX_QUERY_ROWS, (notice) => {
      const p = parsePendingNotice(notice);
      if (p) action.sent(p);
    });
    const settled = run.then(
      (r): ToolOutcome => {
        action.ran(rowsJson(trackedResult(r)));
        const id = action.requestId;
        return { ok: true, decision: id ? 'approve' : 'allow', result: { status: id ? 'approved' : 'done', request_id: id, ...rowsJson(r) }, summary: rowsSummary(r) };
      },
      (e: unknown): ToolOutcome => {
        const message = messageOf(e);
        action.refused(message);
        return refusal(action.requestId ? 'approve' : 'deny', message);
      },
    );
    void settled.finally(() => client.end().catch(() => undefined));
    return answerWithin(settled, action.pending, waitSeconds);
  }

  const requestStatus = requestStatusTool('request_status', 'The state of a write sent for review through execute: pending, approved (with its result), denied (with the reviewer comment), expired or failed.', deps.held, writes);

  return { protocol: 'postgres', tools: [tool(describeSchema), tool(query), tool(execute), requestStatus] };
}
