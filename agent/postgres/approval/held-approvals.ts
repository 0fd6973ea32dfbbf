import type { Socket } from 'node:net';
import type { Identity } from '../../../core/identity/identity';
import type { Decision } from '../../../core/policy/decide';
import type { ActionClass } from '../../../core/policy/schema';
import type { ApprovalKind } from '../../../core/approval/request';
import { askApproval, type ApprovalGate, type ApprovalOutcome, type ApprovalWording } from '../../approvals/approval-flow';
import type { ApprovalEvent } from '../../sessions/events';
import { channelText, type CallerChannel } from '../../sessions/channels';
import { BACKEND, FRONTEND, SQLSTATE, type TransactionStatus } from '../protocol/codes';
import { readErrorFields } from '../protocol/reader';
import type { PgSessionObserver } from '../events';
import { commandComplete, errorResponse, noticeResponse, readyForQuery } from '../protocol/writer';
import type { SessionDeps } from '../session-deps';
import { approvalHash, heldExtendedStatement, MAX_HELD_BATCH_MESSAGES, type ApprovedStatement } from './approved-request';
import { runOnWriteConnection, type ResultTransform } from './run-approved';
import type { UpstreamOptions } from '../upstream/connect';

/** One request held for approval: what the reviewer reads and, once approved, what the write credential runs. */
export interface Held {
  readonly kind: ApprovalKind;
  readonly windowMinutes?: number;
  /** A window's text is shown to reviewers and never run. */
  readonly statement: ApprovedStatement;
  readonly decision: Extract<Decision, { kind: 'approve' }>;
  readonly cls: ActionClass;
}

/** What running a held request needs of its session. */
export interface HeldSession {
  readonly identity: Identity;
  readonly channel: CallerChannel | undefined;
  readonly reason: string | undefined;
  readonly transactionStatus: TransactionStatus;
  readonly closed: boolean;
  /** Aborted when the session ends: the wait for a decision stops. */
  readonly signal: AbortSignal;
  readonly client: Socket;
  /** Resolves once every response owed before the held request is written. */
  idle(): Promise<void>;
  /** To the client now. */
  write(bytes: Buffer): void;
  /** To the client in order, after what is owed (a notice while the request waits). */
  answer(bytes: Buffer): void;
  record(e: ApprovalEvent): void;
  /** The approved run's results masked as the session's own would be (undefined: not masked). */
  resultTransform(statement: ApprovedStatement): ResultTransform | undefined;
  /** Where what the approved run sent the caller is recorded (undefined: the session is not recorded). */
  readonly runRecorder: Pick<PgSessionObserver, 'dataRow' | 'serverMessage' | 'cycleEnd'> | undefined;
}

export interface HeldDeps {
  readonly target: string;
  readonly approvals: ApprovalGate;
  /** The planner's estimate of what a write touches, from the read credential; best effort. */
  readonly estimateBlastRadius: (sql: string) => Promise<string>;
  /** The write connection: the target's database under the write role's defaults. */
  readonly writeConnection: UpstreamOptions;
  readonly maxServerMessageBytes: number;
  /** Approved DDL may change what a column is (or a view reads): masking reads the catalog again. */
  readonly schemaMayHaveChanged: () => void;
}

const WORDING: ApprovalWording = { noun: 'statement', reasonHint: "Run SET twokey.reason = 'why' first.", tooLargeAdvice: 'use twokey exec' };

/**
 * A held request through the shared approval flow, rendered in the Postgres protocol: a pending
 * request is a NoticeResponse in order, a refusal an ErrorResponse and ReadyForQuery, an opened window
 * a NoticeResponse and `SET`, and an approved statement runs once on the write credential.
 */
export async function runHeld(h: Held, s: HeldSession, deps: HeldDeps): Promise<void> {
  if (s.transactionStatus !== 'I' && h.kind === 'statement') {
    return refuse(s, {
      kind: 'refused',
      message: 'twokey: a write inside a transaction block cannot wait for approval',
      hint: `Submit the whole script with \`twokey exec --target ${deps.target} -f script.sql\`; it runs as one transaction once approved.`,
    });
  }
  const text = h.statement.text;
  const asked = await askApproval(
    {
      kind: h.kind,
      windowMinutes: h.windowMinutes,
      target: deps.target,
      protocol: 'postgres',
      identity: s.identity,
      via: s.channel && channelText(s.channel),
      text,
      params: h.statement.protocol === 'extended' ? h.statement.params : undefined,
      sha256: approvalHash(h.kind, h.statement),
      class: h.cls,
      decision: h.decision,
      reason: s.reason,
      blastRadius: h.kind === 'statement' ? () => deps.estimateBlastRadius(text) : undefined,
    },
    WORDING,
    { gate: deps.approvals, record: (e) => !s.closed && s.record(e), signal: s.signal },
  );
  let outcome: ApprovalOutcome;
  if (asked.kind === 'pending') {
    s.answer(noticeResponse({ code: '00000', message: asked.notice }));
    outcome = await asked.outcome;
    if (s.closed) return;
  } else outcome = asked;
  if (outcome.kind === 'refused') return refuse(s, outcome);
  if (outcome.kind === 'window-opened') return finish(s, [noticeResponse({ code: '00000', message: outcome.notice }), commandComplete('SET')]);
  return runApproved(h, s, deps, noticeResponse({ code: '00000', message: outcome.notice }));
}

/** Answers after everything owed before: the messages, then ReadyForQuery. */
async function finish(s: HeldSession, messages: Buffer[]): Promise<void> {
  await s.idle();
  if (!s.closed) s.write(Buffer.concat([...messages, readyForQuery(s.transactionStatus)]));
}

const refuse = (s: HeldSession, r: Extract<ApprovalOutcome, { kind: 'refused' }>): Promise<void> =>
  finish(s, [errorResponse({ severity: 'ERROR', code: SQLSTATE.insufficientPrivilege, message: r.message, hint: r.hint })]);

async function runApproved(h: Held, s: HeldSession, deps: HeldDeps, notice: Buffer): Promise<void> {
  await s.idle();
  if (s.closed) return;
  s.write(notice);
  const recorder = s.runRecorder;
  const startedAt = Date.now();
  const outcome = await runOnWriteConnection(
    deps.writeConnection,
    h.statement,
    {
      write: (bytes) => s.client.write(bytes),
      onDrain: (resume) => s.client.once('drain', resume),
      transform: s.resultTransform(h.statement),
      sent: recorder && ((bytes, code) => recordSent(recorder, bytes, code)),
    },
    deps.maxServerMessageBytes,
  );
  const endedAt = Date.now();
  recorder?.cycleEnd({ endedAt, durationMs: endedAt - startedAt, commandTags: outcome.commandTags, rowsSent: outcome.rows, errors: outcome.errors });
  if (h.cls === 'ddl' || h.cls === 'unknown' || h.kind === 'script') deps.schemaMayHaveChanged();
  if (!s.closed) s.write(readyForQuery(s.transactionStatus));
}

/** What an approved run sent the caller is recorded like any result: its rows (as masked), the server's errors and notices. */
function recordSent(recorder: Pick<PgSessionObserver, 'dataRow' | 'serverMessage'>, bytes: Buffer, code: number): void {
  if (code === BACKEND.DataRow) recorder.dataRow(bytes, 0, bytes.length);
  else if (code === BACKEND.ErrorResponse || code === BACKEND.NoticeResponse) {
    recorder.serverMessage({ kind: code === BACKEND.ErrorResponse ? 'error' : 'notice', fields: readErrorFields(bytes, 0, bytes.length) });
  }
}

/** An extended-protocol batch whose Parse needs approval, collected up to its Sync (to be read, never replayed). */
export interface CollectedBatch {
  readonly messages: Buffer[];
  readonly decision: Extract<Decision, { kind: 'approve' }>;
  readonly cls: ActionClass;
}

/** What the batch collected so far asks for after one more message. */
export type CollectStep =
  | { readonly kind: 'more' }
  | { readonly kind: 'hold'; readonly held: Held }
  /** Refused as a cycle of its own (the caller waits for its ReadyForQuery). */
  | { readonly kind: 'refuse-cycle'; readonly error: Buffer }
  /** Refused inside the batch: the rest is skipped up to Sync. */
  | { readonly kind: 'refuse-to-sync'; readonly error: Buffer };

/**
 * Adds one message (`m`, a whole message) to a batch held for approval; at its Sync the batch is read
 * into the one statement it runs (see approved-request.ts), or refused. A message that cannot belong
 * to such a batch refuses it at once.
 */
export function collectStep(batch: CollectedBatch, m: Buffer): CollectStep {
  const code = m[0] as number;
  batch.messages.push(m);
  const mayBelong = code === FRONTEND.Bind || code === FRONTEND.Describe || code === FRONTEND.Execute;
  if (mayBelong && batch.messages.length < MAX_HELD_BATCH_MESSAGES) return { kind: 'more' };
  const read = heldExtendedStatement(batch.messages);
  if (read.ok) return { kind: 'hold', held: { kind: 'statement', statement: read.statement, decision: batch.decision, cls: batch.cls } };
  const error = errorResponse({ severity: 'ERROR', ...read.refusal });
  return code === FRONTEND.Sync || code === FRONTEND.Query || code === FRONTEND.FunctionCall ? { kind: 'refuse-cycle', error } : { kind: 'refuse-to-sync', error };
}

/** Nothing of the caller's session (search_path, DateStyle, ...) reaches the write connection: the write role's defaults, UTF-8. */
const WRITE_CONNECTION_PARAMS = { application_name: 'twokey', client_encoding: 'UTF8' };

/** The approval dependencies of a session on `target`. */
export function heldDepsFor(deps: SessionDeps): HeldDeps {
  const target = deps.target;
  return {
    target: target.name,
    approvals: deps.approvals,
    estimateBlastRadius: deps.estimateBlastRadius,
    writeConnection: { host: target.upstream.host, port: target.upstream.port, user: target.write.user, password: target.write.password, database: target.upstream.database, params: WRITE_CONNECTION_PARAMS },
    maxServerMessageBytes: deps.limits.maxServerMessageBytes,
    schemaMayHaveChanged: () => deps.masking?.invalidate(target.upstream.database),
  };
}
