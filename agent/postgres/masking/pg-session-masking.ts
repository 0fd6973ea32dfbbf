import type { Identity } from '../../../core/identity/identity';
import type { MaskingProfile } from '../../../core/masking/profile';
import type { Decision } from '../../../core/policy/decide';
import { approvedMessages, type ApprovedStatement } from '../approval/approved-request';
import type { ResultTransform } from '../approval/run-approved';
import { SQLSTATE } from '../protocol/codes';
import { MessageFramer } from '../protocol/framer';
import { errorResponse } from '../protocol/writer';
import type { PgCatalog } from './catalog';
import type { SessionMasking } from './masking-service';
import { ResultMasker } from './result-masker';
import { checkStatement, type StatementMasking } from './statement-masking';

/** Masking's say on one statement, for the session to act on. */
export type StatementVerdict =
  | Exclude<StatementMasking, { kind: 'reload' }>
  /** The catalog reloads first (once per statement): hold the statement, and ask again when `done` settles. */
  | { readonly kind: 'reload'; readonly done: Promise<void> }
  /** Masks apply that did not when the session started: its results were never planned for masking. */
  | { readonly kind: 'reconnect' };

const OK: StatementVerdict = { kind: 'ok', copy: undefined };

/**
 * One Postgres session's masking, for a subject the policy masks: the result masker over the
 * database's catalog (used on the response path), the statement checks (strict refusals, COPY plans,
 * reloads for relations the catalog does not know yet), the statement text as recorded, and the
 * masking of an approved run's results. Sessions of unmasked subjects have none.
 */
export class PgSessionMasking {
  /** The statement the catalog was last reloaded for (reloaded once per statement, not in a loop). */
  private reloadedFor: string | undefined;

  private constructor(
    readonly masker: ResultMasker,
    private readonly catalog: PgCatalog,
  ) {}

  /** The session's masking once its catalog is loaded; undefined for an unmasked subject, the error when the catalog cannot be read. */
  static async start(service: SessionMasking | undefined, identity: Identity, database: string): Promise<PgSessionMasking | Error | undefined> {
    const profile = service?.profileFor(identity);
    if (!service || !profile) return undefined;
    const catalog = service.catalogFor(database);
    try {
      if (!catalog.ready) await catalog.refresh();
    } catch (e) {
      return e instanceof Error ? e : new Error(String(e));
    }
    catalog.keepFresh();
    return new PgSessionMasking(new ResultMasker(profile, catalog), catalog);
  }

  /**
   * Masking's say on a statement the policy allows (a denied one is refused anyway).
   * `standardConformingStrings`: the session's setting, as the server last reported it.
   */
  static check(masking: PgSessionMasking | undefined, decision: Decision, sql: string, currentProfile: () => MaskingProfile | undefined, standardConformingStrings: boolean): StatementVerdict {
    if (decision.kind === 'deny') return OK;
    if (!masking) return decision.masks.length === 0 ? OK : { kind: 'reconnect' };
    return masking.check(decision, sql, currentProfile, standardConformingStrings);
  }

  private check(decision: Exclude<Decision, { kind: 'deny' }>, sql: string, currentProfile: () => MaskingProfile | undefined, standardConformingStrings: boolean): StatementVerdict {
    const masker = this.masker;
    const catalog = this.catalog;
    if (decision.masks.length) masker.profile = currentProfile() ?? masker.profile;
    if (!standardConformingStrings && masker.profile.masksColumns) {
      return { kind: 'deny', message: 'twokey: masking needs standard_conforming_strings on (the agent reads string literals as the server does only then); reconnect' };
    }
    catalog.keepFresh();
    const mayReload = this.reloadedFor !== sql;
    // A catalog invalidated by DDL is reloaded before it decides anything (once per statement).
    const verdict = !catalog.ready && mayReload ? ({ kind: 'reload' } as const) : checkStatement(sql, masker.profile, catalog, mayReload, (name) => masker.knowsPrepared(name));
    if (verdict.kind !== 'reload') {
      this.reloadedFor = undefined;
      return verdict;
    }
    this.reloadedFor = sql;
    return { kind: 'reload', done: catalog.refresh() };
  }

  /** A statement's text as the recording keeps it: what the detectors leave of its literals. */
  scrub(sql: string): string {
    return this.masker.profile.scanner.scanString(sql);
  }

  /** Results of an approved run are masked like any other (with a masker of their own: another connection). */
  approvedRunTransform(statement: ApprovedStatement): ResultTransform {
    const masker = new ResultMasker(this.masker.profile, this.catalog);
    const messages = approvedMessages(statement);
    new MessageFramer(messages.length + 1).push(messages, (buf, start, end, code) => {
      masker.expectClient(code, buf, start, end);
    });
    let refusing = false;
    return (buf, start, end, code) => {
      if (refusing) return null;
      const outcome = masker.handle(buf, start, end, code, true);
      if (outcome.kind === 'refuse') {
        refusing = true;
        return errorResponse({ severity: 'ERROR', code: SQLSTATE.insufficientPrivilege, message: outcome.reason });
      }
      return outcome.kind === 'written' ? outcome.bytes : undefined;
    };
  }
}
