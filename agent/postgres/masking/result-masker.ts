import type { MaskingProfile } from '../../../core/masking/profile';
import { BACKEND, FRONTEND } from '../protocol/codes';
import { bodyOf, errorFieldRanges, readParse, readTarget } from '../protocol/reader';
import type { PgCatalog } from './catalog';
import { message } from '../protocol/writer';
import type { ByteBatch } from '../protocol/byte-batch';
import { binaryAsText, planColumns, readRowDescription, unknownRelations, JSONB, TEXT_TYPES, type ColumnPlan } from './column-plan';
import { maskCopyRow, type CopyPlan } from './copy-rows';
import { ResultPlanner, untracedPlan, type DefinedName, type ResultPlan } from './result-plans';

/**
 * Client messages forwarded and still owed a response: the order in which the server answers. Each
 * carries what the lineage of its statement says (`masked`: errors about it are not shown).
 */
type Expectation =
  /** `next`: the statement of the query string whose results come next; `defines`: the names each statement defines. */
  | { readonly k: 'Q'; readonly copy: CopyPlan | undefined; plans: readonly ResultPlan[]; readonly defines: readonly (readonly DefinedName[])[]; next: number; masked: boolean }
  | { readonly k: 'P'; readonly name: string; readonly masked: boolean }
  | { readonly k: 'B'; readonly portal: string; masked: boolean }
  | { readonly k: 'D'; readonly portal: string | undefined; plan: ResultPlan; masked: boolean }
  | { readonly k: 'E'; readonly portal: string; masked: boolean }
  | { readonly k: 'S'; readonly masked: boolean };

/** Outstanding client messages a masked session may pipeline before the agent ends it. */
export const MAX_OUTSTANDING_MESSAGES = 100_000;
/** Error and notice fields that carry text a detector should read (severity, code, file, line do not). */
const SCANNED_FIELDS = new Set(['M', 'D', 'H', 'W', 'q', 'c', 't', 's']);
/**
 * Fields of an error about a statement that reads masked columns that may echo a value (message,
 * detail, hint, context, internal query): replaced or left out. SQLSTATE, position and the names of
 * the schema, table, column, type and constraint stay (PostgreSQL docs, "Error and Notice Message Fields").
 */
const VALUE_FIELDS = new Set(['M', 'D', 'H', 'W', 'q']);

export type RowOutcome =
  | { readonly kind: 'pass' }
  | { readonly kind: 'written'; readonly bytes: Buffer }
  /** Rewritten straight into the output batch, at `buf[start..end)`: already on its way out. */
  | { readonly kind: 'emitted'; readonly buf: Buffer; readonly start: number; readonly end: number }
  | { readonly kind: 'refuse'; readonly reason: string };

/** What to do with one server message: forward it, forward the rewritten bytes, refuse the rest of the cycle, or reload the catalog and come back. */
export type MessageOutcome = RowOutcome | { readonly kind: 'reload' };

const PASS: RowOutcome = { kind: 'pass' };
const DATA_ROW = BACKEND.DataRow;
const RELOAD: MessageOutcome = { kind: 'reload' };

/**
 * Masks what one session's database sends back, following the protocol to know which description
 * each row belongs to: a simple Query's RowDescription, or the Describe of the portal an Execute runs.
 * Rows without a description it knows are refused, never passed.
 */
export class ResultMasker {
  private readonly expected: Expectation[] = [];
  private readonly planner: ResultPlanner;
  /** Whether a statement of the extended-protocol batch being sent reads masked columns (for its Sync). */
  private batchMasked = false;
  private readonly portalPlans = new Map<string, ColumnPlan>();
  private current: ColumnPlan | undefined;
  private last: { description: Buffer; plan: ColumnPlan; result: ResultPlan; profile: MaskingProfile; catalogVersion: number } | undefined;
  private copy: CopyPlan | undefined;
  private copyHeader = false;
  /** Replacement values of the row being rewritten (reused: no allocation per row). */
  private readonly replacements: (Buffer | null | undefined)[] = [];

  constructor(
    public profile: MaskingProfile,
    private readonly catalog: PgCatalog,
  ) {
    this.planner = new ResultPlanner(catalog);
  }

  /** Whether a SQL-level EXECUTE of `name` runs a statement this session prepared through the agent. */
  knowsPrepared(name: string): boolean {
    return this.planner.knowsPrepared(name);
  }

  // ---- client messages, in the order they are forwarded ----

  /**
   * Notes a forwarded client message that the server will answer (Query, Bind, Describe, Execute,
   * Sync). False when the client has too many messages outstanding (the session ends).
   */
  expectClient(code: number, buf: Buffer, start: number, end: number, copy?: CopyPlan): boolean {
    const e = this.expectation(code, buf, start, end, copy);
    if (!e) return true;
    if (this.expected.length >= MAX_OUTSTANDING_MESSAGES) return false;
    this.batchMasked = e.k !== 'S' && e.k !== 'Q' && (this.batchMasked || e.masked);
    this.expected.push(e);
    return true;
  }

  private expectation(code: number, buf: Buffer, start: number, end: number, copy: CopyPlan | undefined): Expectation | undefined {
    const profile = this.profile;
    switch (code) {
      case FRONTEND.Query: {
        const { plans, defines } = this.planner.query(bodyOf(buf, start, end).cstring(), profile);
        return { k: 'Q', copy, plans, defines, next: 0, masked: plans.some((p) => p.readsMasked) };
      }
      case FRONTEND.Parse: {
        const parse = readParse(bodyOf(buf, start, end));
        return { k: 'P', name: parse.name, masked: this.planner.parse(parse.name, parse.query, profile).readsMasked };
      }
      case FRONTEND.Bind: {
        const body = bodyOf(buf, start, end);
        const portal = body.cstring();
        return { k: 'B', portal, masked: this.planner.bind(portal, body.cstring(), profile).readsMasked };
      }
      case FRONTEND.Describe: {
        const t = readTarget(bodyOf(buf, start, end));
        const plan = t.kind === 'P' ? this.planner.portal(t.name, profile) : this.planner.preparedStatement(t.name, profile);
        return { k: 'D', portal: t.kind === 'P' ? t.name : undefined, plan, masked: plan.readsMasked };
      }
      case FRONTEND.Execute: {
        const portal = bodyOf(buf, start, end).cstring();
        return { k: 'E', portal, masked: this.planner.portal(portal, profile).readsMasked };
      }
      case FRONTEND.Close: {
        const t = readTarget(bodyOf(buf, start, end));
        this.planner.close(t.kind, t.name);
        return undefined;
      }
      case FRONTEND.Sync:
        return { k: 'S', masked: this.batchMasked };
      default:
        return undefined;
    }
  }

  // ---- server messages ----

  /**
   * One server message. With `planUnknown` a description naming relations the catalog does not know
   * is planned anyway (their columns masked in full) instead of asking for a reload.
   */
  handle(buf: Buffer, start: number, end: number, code: number, planUnknown = false, out?: ByteBatch): MessageOutcome {
    // Rows first, compared with a local constant: this runs once per row.
    if (code === DATA_ROW) return this.dataRow(buf, start, end, out);
    switch (code) {
      case BACKEND.RowDescription:
        return this.rowDescription(buf, start, end, planUnknown) ? PASS : RELOAD;
      case BACKEND.ParseComplete:
        if (this.expected[0]?.k === 'P') this.expected.shift();
        return PASS;
      case BACKEND.NoData:
        this.noData();
        return PASS;
      case BACKEND.BindComplete:
        this.bindComplete();
        return PASS;
      case BACKEND.CommandComplete:
      case BACKEND.EmptyQueryResponse:
      case BACKEND.PortalSuspended:
        this.resultEnd();
        return PASS;
      case BACKEND.ErrorResponse:
      case BACKEND.NoticeResponse: {
        // Decided before error() moves past the statement the error is about.
        const masked = this.expected[0]?.masked ?? false;
        if (code === BACKEND.ErrorResponse) {
          this.forgetRefused();
          this.error();
        }
        return written(masked ? hideValues(buf, start, end) : this.fields(buf, start, end));
      }
      case BACKEND.ReadyForQuery:
        this.ready(buf[start + 5] === 0x49);
        return PASS;
      case BACKEND.CopyOutResponse: {
        const refusal = this.copyOut();
        return refusal ? { kind: 'refuse', reason: refusal } : PASS;
      }
      case BACKEND.CopyData:
        return written(this.copyData(buf, start, end));
      case BACKEND.NotificationResponse:
        return written(this.notification(buf, start, end));
      case BACKEND.CopyBothResponse:
        return { kind: 'refuse', reason: 'twokey: COPY BOTH cannot be masked' };
      default:
        return PASS;
    }
  }

  /** A RowDescription: true when it was planned, false when the catalog must be reloaded first. */
  rowDescription(buf: Buffer, start: number, end: number, planUnknown = false): boolean {
    const head = this.expected[0];
    const result = head?.k === 'D' ? head.plan : head?.k === 'Q' ? (head.plans[head.next] ?? untracedPlan(this.profile)) : untracedPlan(this.profile);
    const plan = this.reusablePlan(buf, start, end, result) ?? this.newPlan(buf, start, end, planUnknown, result);
    if (!plan) return false;
    if (head?.k === 'D') {
      this.expected.shift();
      if (head.portal !== undefined) this.portalPlans.set(head.portal, plan);
    } else this.current = plan;
    return true;
  }

  /** The last plan, when this description is byte for byte the last one (a statement run again). */
  private reusablePlan(buf: Buffer, start: number, end: number, result: ResultPlan): ColumnPlan | undefined {
    const last = this.last;
    if (!last || last.result !== result || last.profile !== this.profile || last.catalogVersion !== this.catalog.version || !this.catalog.ready) return undefined;
    return last.description.length === end - start && last.description.compare(buf, start, end) === 0 ? last.plan : undefined;
  }

  private newPlan(buf: Buffer, start: number, end: number, planUnknown: boolean, result: ResultPlan): ColumnPlan | undefined {
    const fields = readRowDescription(buf, start, end);
    if (!planUnknown && (!this.catalog.ready || unknownRelations(fields, this.catalog))) return undefined;
    const plan = planColumns(fields, this.profile, this.catalog, result);
    this.last = { description: Buffer.from(buf.subarray(start, end)), plan, result, profile: this.profile, catalogVersion: this.catalog.version };
    return plan;
  }

  /** Loads the catalog (after `rowDescription` returned false). */
  reloadCatalog(): Promise<void> {
    return this.catalog.refresh();
  }

  noData(): void {
    const head = this.expected[0];
    if (head?.k !== 'D') return;
    this.expected.shift();
    if (head.portal !== undefined) this.portalPlans.delete(head.portal);
  }

  bindComplete(): void {
    const head = this.expected[0];
    if (head?.k !== 'B') return;
    this.expected.shift();
    this.portalPlans.delete(head.portal);
  }

  /** CommandComplete, EmptyQueryResponse, PortalSuspended: one Execute's (or one statement's) results ended. */
  resultEnd(): void {
    const head = this.expected[0];
    if (head?.k === 'E') this.expected.shift();
    else if (head?.k === 'Q') head.next++;
    this.current = undefined;
    this.copy = undefined;
  }

  /**
   * Before an error moves past them: the names defined by the statement or message that failed and by
   * those the server skips after it (the rest of the query string, or of the batch up to its Sync)
   * were noted when sent but never made, or not as planned (a PREPARE of a name in use fails and the
   * old statement stays). They plan as untraced from now on; so does whatever the client already
   * pipelined after them, since it was planned with them.
   */
  private forgetRefused(): void {
    const head = this.expected[0];
    const names: DefinedName[] = [];
    let later = 1;
    if (head?.k === 'Q') names.push(...head.defines.slice(head.next).flat());
    else {
      later = 0;
      for (const e of this.expected) {
        later++;
        if (e.k === 'S' || e.k === 'Q') break;
        if (e.k === 'P') names.push({ kind: 'S', name: e.name });
        else if (e.k === 'B') names.push({ kind: 'P', name: e.portal });
      }
    }
    if (names.length === 0) return;
    this.planner.forget(names);
    const untraced = untracedPlan(this.profile);
    for (const e of this.expected.slice(later)) {
      if (e.k === 'Q') {
        e.plans = e.plans.map(() => untraced);
        e.masked = true;
      } else if (e.k === 'D') {
        e.plan = untraced;
        e.masked = true;
      } else if (e.k === 'B') {
        this.planner.close('P', e.portal);
        e.masked = true;
      } else if (e.k === 'E') e.masked = true;
    }
  }

  /** After an error the server skips the rest of an extended batch, up to its Sync. */
  error(): void {
    this.current = undefined;
    this.copy = undefined;
    while (this.expected.length && this.expected[0]?.k !== 'S' && this.expected[0]?.k !== 'Q') this.expected.shift();
  }

  ready(transactionIdle: boolean): void {
    const head = this.expected[0];
    if (head?.k === 'Q' || head?.k === 'S') this.expected.shift();
    this.current = undefined;
    this.copy = undefined;
    // Portals live until their transaction ends.
    if (transactionIdle) this.portalPlans.clear();
  }

  copyOut(): string | undefined {
    const head = this.expected[0];
    if (head?.k !== 'Q' || !head.copy) {
      return this.profile.scanner.empty ? undefined : 'twokey: COPY TO STDOUT under masking must be a simple-protocol COPY the agent has read';
    }
    this.copy = head.copy;
    this.copyHeader = head.copy.header;
    return undefined;
  }

  copyData(buf: Buffer, start: number, end: number): Buffer | undefined {
    const plan = this.copy;
    if (!plan) return undefined;
    if (this.copyHeader) {
      this.copyHeader = false;
      return undefined;
    }
    const line = buf.toString('utf8', start + 5, end);
    const masked = maskCopyRow(plan, line, this.profile.scanner);
    return masked === line ? undefined : message(BACKEND.CopyData, Buffer.from(masked, 'utf8'));
  }

  /** Masks one DataRow: into `out` when given (no allocation for constant masks), else into new bytes. */
  dataRow(buf: Buffer, start: number, end: number, out?: ByteBatch): RowOutcome {
    const head = this.expected[0];
    const plan = head?.k === 'E' ? this.portalPlans.get(head.portal) : this.current;
    if (!plan) return { kind: 'refuse', reason: 'twokey: rows without a row description cannot be masked; describe the portal before executing it' };
    if (plan.passThrough) return PASS;
    const actions = plan.actions;
    const count = (buf[start + 5] as number) << 8 | (buf[start + 6] as number);
    if (count !== actions.length) return { kind: 'refuse', reason: 'twokey: a row does not match its description' };
    const replacements = this.replacements;
    if (replacements.length < count) replacements.length = count;
    let at = start + 7;
    let size = end - start;
    let changed = false;
    for (let i = 0; i < count; i++) {
      const len = int32At(buf, at);
      at += 4;
      replacements[i] = undefined;
      if (len < 0) continue;
      const action = actions[i];
      let replacement: Buffer | undefined;
      if (action?.kind === 'mask') {
        replacement = action.constant ?? Buffer.from(action.mask.mask(buf.toString('utf8', at, at + len)), 'utf8');
      } else if (action?.kind === 'scan') {
        if (!action.binary) {
          const masked = this.profile.scanner.scanBytes(buf, at, at + len);
          if (masked !== undefined) replacement = Buffer.from(masked, 'utf8');
        } else {
          const text = binaryAsText(action.type, buf, at, at + len);
          const masked = this.profile.scanner.scanString(text);
          if (masked !== text) {
            if (!isTextual(action.type)) return { kind: 'refuse', reason: 'twokey: a binary-format value holds data that must be masked; request text format' };
            replacement = action.type === JSONB ? Buffer.concat([Buffer.from([1]), Buffer.from(masked, 'utf8')]) : Buffer.from(masked, 'utf8');
          }
        }
      } else if (action?.kind === 'refuse') return { kind: 'refuse', reason: action.reason };
      if (replacement) {
        replacements[i] = replacement;
        size += replacement.length - len;
        changed = true;
      }
      at += len;
    }
    if (!changed) return PASS;
    const { target, offset } = out ? out.reserve(size) : { target: Buffer.allocUnsafe(size), offset: 0 };
    target[offset] = DATA_ROW;
    putInt32(target, offset + 1, size - 1);
    target[offset + 5] = count >> 8;
    target[offset + 6] = count & 0xff;
    let w = offset + 7;
    at = start + 7;
    for (let i = 0; i < count; i++) {
      const len = int32At(buf, at);
      at += 4;
      const r = replacements[i];
      if (r) {
        putInt32(target, w, r.length);
        copyBytes(r, 0, r.length, target, w + 4);
        w += 4 + r.length;
      } else {
        putInt32(target, w, len);
        w += 4;
        if (len > 0) {
          copyBytes(buf, at, at + len, target, w);
          w += len;
        }
      }
      if (len > 0) at += len;
    }
    return out ? { kind: 'emitted', buf: target, start: offset, end: offset + size } : { kind: 'written', bytes: target };
  }

  /** ErrorResponse, NoticeResponse: the text fields pass the detectors (PostgreSQL echoes values in them). */
  fields(buf: Buffer, start: number, end: number): Buffer | undefined {
    const scanner = this.profile.scanner;
    if (scanner.empty) return undefined;
    const fields = errorFieldRanges(buf, start, end);
    if (!fields) return undefined;
    const parts: Buffer[] = [];
    let changed = false;
    for (const { code, valueStart, valueEnd } of fields) {
      const value = buf.toString('utf8', valueStart, valueEnd);
      const masked = SCANNED_FIELDS.has(code) ? scanner.scanString(value) : value;
      if (masked !== value) changed = true;
      parts.push(Buffer.from(code, 'latin1'), Buffer.from(masked, 'utf8'), Buffer.from([0]));
    }
    if (!changed) return undefined;
    parts.push(Buffer.from([0]));
    return message(buf[start] as number, Buffer.concat(parts));
  }

  /** NotificationResponse: the payload passes the detectors. */
  notification(buf: Buffer, start: number, end: number): Buffer | undefined {
    const channelEnd = buf.indexOf(0, start + 9);
    const payloadEnd = channelEnd < 0 ? -1 : buf.indexOf(0, channelEnd + 1);
    if (payloadEnd < 0 || payloadEnd >= end) return undefined;
    const payload = buf.toString('utf8', channelEnd + 1, payloadEnd);
    const masked = this.profile.scanner.scanString(payload);
    if (masked === payload) return undefined;
    return message(BACKEND.NotificationResponse, Buffer.concat([buf.subarray(start + 5, channelEnd + 1), Buffer.from(`${masked}\0`, 'utf8')]));
  }
}

/**
 * An ErrorResponse or NoticeResponse about a statement that reads masked columns: the fields that may
 * echo a value are replaced by a generic message naming the SQLSTATE; the others pass.
 */
function hideValues(buf: Buffer, start: number, end: number): Buffer {
  const parts: Buffer[] = [];
  let sqlstate = '';
  for (const { code, at, valueStart, valueEnd } of errorFieldRanges(buf, start, end) ?? []) {
    if (code === 'C') sqlstate = buf.toString('latin1', valueStart, valueEnd);
    if (!VALUE_FIELDS.has(code)) parts.push(buf.subarray(at, valueEnd + 1));
  }
  const what = buf[start] === BACKEND.ErrorResponse ? 'an error' : 'a notice';
  const text = `twokey: the database raised ${what} (SQLSTATE ${sqlstate || 'unknown'}); its text is hidden because the statement reads masked columns`;
  parts.push(Buffer.from(`M${text}\0`, 'utf8'), Buffer.from([0]));
  return message(buf[start] as number, Buffer.concat(parts));
}

/** A signed big-endian Int32 without Buffer's method call and bounds checks (the framer bounded the message). */
function int32At(buf: Buffer, at: number): number {
  return ((buf[at] as number) << 24) | ((buf[at + 1] as number) << 16) | ((buf[at + 2] as number) << 8) | (buf[at + 3] as number);
}

function putInt32(buf: Buffer, at: number, value: number): void {
  buf[at] = value >>> 24;
  buf[at + 1] = (value >>> 16) & 0xff;
  buf[at + 2] = (value >>> 8) & 0xff;
  buf[at + 3] = value & 0xff;
}

/** Short values are copied byte by byte: Buffer#copy costs more per call than a few dozen bytes do. */
const SHORT_COPY_BYTES = 64;
function copyBytes(src: Buffer, from: number, to: number, dst: Buffer, at: number): void {
  if (to - from > SHORT_COPY_BYTES) {
    src.copy(dst, at, from, to);
    return;
  }
  for (let i = from, j = at; i < to; i++, j++) dst[j] = src[i] as number;
}

function written(replacement: Buffer | undefined): RowOutcome {
  return replacement ? { kind: 'written', bytes: replacement } : PASS;
}

function isTextual(type: number): boolean {
  return type === JSONB || TEXT_TYPES.has(type);
}
