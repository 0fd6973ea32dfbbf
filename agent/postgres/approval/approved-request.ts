import { actionHash, type ApprovalKind } from '../../../core/approval/request';
import { FRONTEND, SQLSTATE } from '../protocol/codes';
import { bodyOf, ProtocolReadError, readBind, readExecute, readParse, readTarget, type BodyReader } from '../protocol/reader';
import { cstring, int32, message, queryMessage } from '../protocol/writer';

/**
 * What a reviewer approves and the write credential runs: one statement, as values. The bytes sent on
 * the write connection are built from these values by `approvedMessages`, never copied from the
 * caller, so nothing the reviewer did not see (a second Bind, another portal, a Query riding along,
 * declared parameter types) can reach the write credential.
 */
export type ApprovedStatement =
  | { readonly protocol: 'simple'; readonly text: string }
  | {
      readonly protocol: 'extended';
      readonly text: string;
      /** Text-format values (null for SQL NULL), as the reviewer reads them. */
      readonly params: readonly (string | null)[];
      /** How the caller asked for result columns (0 text, 1 binary): how results are encoded, not what runs. */
      readonly resultFormats: readonly number[];
      /** Whether the caller asked for the portal's description (it expects a RowDescription or NoData). */
      readonly describe: boolean;
    };

/** Parse, Bind, Describe, Execute, Sync: the most messages one held extended-protocol statement has. */
export const MAX_HELD_BATCH_MESSAGES = 5;

export const HELD_BATCH_RULE = 'twokey: a statement that needs approval must be sent alone: Parse, Bind, Describe, Execute, Sync; for scripts use twokey exec';

export interface HeldBatchRefusal {
  readonly code: string;
  readonly message: string;
  readonly detail: string;
}

export type HeldBatch = { readonly ok: true; readonly statement: ApprovedStatement } | { readonly ok: false; readonly refusal: HeldBatchRefusal };

const refuse = (detail: string, message = HELD_BATCH_RULE, code: string = SQLSTATE.featureNotSupported): HeldBatch => ({ ok: false, refusal: { code, message, detail } });

const NAMED_STATEMENT = 'twokey: a statement that needs approval cannot be prepared under a name; send it with the unnamed statement (for pgbench, -M extended rather than -M prepared)';
const BINARY_PARAMETERS = 'twokey: a statement that needs approval must send its parameters as text, so that reviewers can read them';

/** The one shape a held extended-protocol batch may have, as told to the caller. */
const ACCEPTED_SHAPE = 'Parse (unnamed), Bind (unnamed portal and statement, text parameters), an optional Describe of that portal, Execute (all rows), Sync';

/** A simple Query that needs approval: the statement is its text. */
export const simpleStatement = (text: string): ApprovedStatement => ({ protocol: 'simple', text });

/**
 * Reads a held extended-protocol batch (whole messages, header included, from its Parse to its Sync)
 * into the one statement it runs, or says why it is refused. Accepted: exactly Parse, Bind, optionally
 * Describe of the unnamed portal, Execute of all rows, Sync; every name empty; every parameter text.
 * Anything else is refused, not trimmed: a batch that asks for more than one statement is not one.
 * A malformed message throws ProtocolReadError (the session ends, as for any malformed message).
 */
export function heldExtendedStatement(messages: readonly Buffer[]): HeldBatch {
  const codes = messages.map((m) => m[0] as number);
  if (codes[0] !== FRONTEND.Parse) return refuse(`the batch does not begin with Parse; accepted: ${ACCEPTED_SHAPE}`);
  const parse = whole(messages[0] as Buffer, readParse);
  if (parse.name !== '') return refuse(`statement name ${JSON.stringify(parse.name)}`, NAMED_STATEMENT);
  const describe = codes.length === 5 && codes[2] === FRONTEND.Describe;
  const expected = describe ? [FRONTEND.Parse, FRONTEND.Bind, FRONTEND.Describe, FRONTEND.Execute, FRONTEND.Sync] : [FRONTEND.Parse, FRONTEND.Bind, FRONTEND.Execute, FRONTEND.Sync];
  if (codes.length !== expected.length || codes.some((c, i) => c !== expected[i])) {
    return refuse(`got ${codes.map((c) => JSON.stringify(String.fromCharCode(c))).join(', ')}; accepted: ${ACCEPTED_SHAPE}`);
  }
  const bind = whole(messages[1] as Buffer, readBind);
  if (bind.portal !== '' || bind.statement !== '') return refuse(`Bind of portal ${JSON.stringify(bind.portal)} to statement ${JSON.stringify(bind.statement)}; accepted: ${ACCEPTED_SHAPE}`);
  if (bind.paramFormats.some((f) => f !== 0)) return refuse('a parameter in binary format', BINARY_PARAMETERS);
  if (bind.resultFormats.some((f) => f !== 0 && f !== 1)) return refuse(`result format codes ${bind.resultFormats.join(', ')}`, HELD_BATCH_RULE, SQLSTATE.protocolViolation);
  if (describe) {
    const target = whole(messages[2] as Buffer, readTarget);
    if (target.kind !== 'P' || target.name !== '') return refuse(`Describe of ${target.kind === 'P' ? 'portal' : 'statement'} ${JSON.stringify(target.name)}; accepted: ${ACCEPTED_SHAPE}`);
  }
  const execute = whole(messages[describe ? 3 : 2] as Buffer, readExecute);
  if (execute.portal !== '' || execute.maxRows !== 0) return refuse(`Execute of portal ${JSON.stringify(execute.portal)} with a row limit of ${execute.maxRows}; accepted: ${ACCEPTED_SHAPE}`);
  whole(messages[messages.length - 1] as Buffer, () => undefined);
  return {
    ok: true,
    statement: {
      protocol: 'extended',
      text: parse.query,
      params: bind.params.map((p) => (p === null ? null : p.toString('utf8'))),
      resultFormats: bind.resultFormats,
      describe,
    },
  };
}

/** Reads one message's body; trailing bytes are a malformed message (PostgreSQL rejects them too). */
function whole<T>(m: Buffer, read: (r: BodyReader) => T): T {
  const r = bodyOf(m, 0, m.length);
  const value = read(r);
  if (r.remaining !== 0) throw new ProtocolReadError(`${r.remaining} unexpected byte(s) at the end of a ${JSON.stringify(String.fromCharCode(m[0] as number))} message`);
  return value;
}

/** The hash a reviewer approves and a grant is redeemed by: kind, text, and (extended protocol) every parameter. */
export const approvalHash = (kind: ApprovalKind, s: ApprovedStatement): string => actionHash({ kind, text: s.text, params: s.protocol === 'extended' ? s.params : undefined });

/**
 * The bytes sent on the write connection, built from the approved values. Extended: the unnamed
 * statement with no declared parameter types (the server infers them from the text the reviewer read;
 * a caller's type OIDs are not shown to reviewers and could change which operator a value meets), the
 * unnamed portal with text parameters, Describe if the caller asked, Execute all rows, Sync.
 */
export function approvedMessages(s: ApprovedStatement): Buffer {
  if (s.protocol === 'simple') return queryMessage(s.text);
  const int16 = (n: number): Buffer => {
    const b = Buffer.allocUnsafe(2);
    b.writeInt16BE(n, 0);
    return b;
  };
  const params = s.params.map((p) => (p === null ? int32(-1) : Buffer.concat([int32(Buffer.byteLength(p)), Buffer.from(p, 'utf8')])));
  const parts = [
    message(FRONTEND.Parse, Buffer.concat([cstring(''), cstring(s.text), int16(0)])),
    message(FRONTEND.Bind, Buffer.concat([cstring(''), cstring(''), int16(0), int16(s.params.length), ...params, int16(s.resultFormats.length), ...s.resultFormats.map(int16)])),
  ];
  if (s.describe) parts.push(message(FRONTEND.Describe, Buffer.concat([Buffer.from('P'), cstring('')])));
  parts.push(message(FRONTEND.Execute, Buffer.concat([cstring(''), int32(0)])), message(FRONTEND.Sync));
  return Buffer.concat(parts);
}
