import { UNKNOWN_SOURCE, type ColumnMask, type MaskingProfile } from '../../../core/masking/profile';
import type { PgCatalog } from './catalog';
import type { Lineage } from './lineage';
import type { Node } from './lineage-scope';
import { analyzeSql } from './statement-analysis';

/** What a statement's lineage says about the result it returns and the messages it raises. */
export interface ResultPlan {
  /** The mask of each result column by position, when the lineage gives the columns one for one. */
  readonly outputs: readonly (ColumnMask | undefined)[] | undefined;
  /** The mask of a column the outputs cannot place (no lineage by position, or another column count). */
  readonly fallback: ColumnMask | undefined;
  /** The statement reads a masked column: the database's errors and notices about it may hold values. */
  readonly readsMasked: boolean;
}

/** Names (prepared statements, portals, cursors) a session's planner remembers; beyond, they plan as untraced. */
export const MAX_PLANNED_NAMES = 10_000;

/** The plan of a statement whose lineage is known. */
export function planFromLineage(lineage: Lineage, profile: MaskingProfile): ResultPlan {
  const all = new Set<string>();
  for (const o of lineage.outputs) for (const s of o.sources) all.add(s);
  for (const s of lineage.uses.keys()) all.add(s);
  let readsMasked = false;
  for (const s of all) if (profile.column(s)) readsMasked = true;
  return {
    outputs: lineage.exact ? lineage.outputs.map((o) => profile.derived(o.sources, o.plain)) : undefined,
    fallback: profile.derived(all, false),
    readsMasked,
  };
}

/** The plan of a statement the agent cannot trace: any column may show anything masked. */
export function untracedPlan(profile: MaskingProfile): ResultPlan {
  return { outputs: undefined, fallback: profile.derived([UNKNOWN_SOURCE], false), readsMasked: profile.masksColumns };
}

/** A name a client message defines in the server's namespaces: 'S' prepared statements, 'P' portals and cursors. */
export interface DefinedName {
  readonly kind: 'S' | 'P';
  readonly name: string;
}

/** Per statement of a query string: its result plan and the names it defines if it succeeds. */
export interface QueryPlans {
  readonly plans: readonly ResultPlan[];
  readonly defines: readonly (readonly DefinedName[])[];
}

/**
 * One session's result plans: per statement of a query string, per prepared statement and portal, as
 * the client names them (in the order it sends them, which is the order the server runs them). The
 * server keeps one namespace for SQL PREPARE and Parse, and one for DECLARE and Bind: so does the
 * planner. A name it does not know plans as untraced (masked in full). A definition is noted when it
 * is sent; the masker forgets it when the server refuses or skips it (see `forget`).
 */
export class ResultPlanner {
  private readonly statements = new Map<string, ResultPlan>();
  private readonly portals = new Map<string, ResultPlan>();
  private readonly byLineage = new WeakMap<Lineage, { profile: MaskingProfile; plan: ResultPlan }>();

  constructor(private readonly catalog: PgCatalog) {}

  /** One plan per statement of a simple Query (or of a Parse), noting what it prepares or declares. */
  query(sql: string, profile: MaskingProfile): QueryPlans {
    const analyzed = analyzeSql(sql, this.catalog);
    if (analyzed.kind === 'error') return { plans: [untracedPlan(profile)], defines: [[]] };
    const defines: DefinedName[][] = [];
    const plans = analyzed.statements.map(({ node, lineage }) => {
      const names: DefinedName[] = [];
      defines.push(names);
      return this.statement(node, lineage, profile, names);
    });
    return { plans, defines };
  }

  parse(name: string, sql: string, profile: MaskingProfile): ResultPlan {
    const { plans } = this.query(sql, profile);
    const plan = plans.length === 1 ? (plans[0] as ResultPlan) : untracedPlan(profile);
    remember(this.statements, name, plan);
    return plan;
  }

  bind(portal: string, statement: string, profile: MaskingProfile): ResultPlan {
    const plan = this.statements.get(statement) ?? untracedPlan(profile);
    remember(this.portals, portal, plan);
    return plan;
  }

  preparedStatement(name: string, profile: MaskingProfile): ResultPlan {
    return this.statements.get(name) ?? untracedPlan(profile);
  }

  /** A portal: bound by the protocol, or a cursor a DECLARE named. */
  portal(name: string, profile: MaskingProfile): ResultPlan {
    return this.portals.get(name) ?? untracedPlan(profile);
  }

  close(kind: 'S' | 'P', name: string): void {
    (kind === 'S' ? this.statements : this.portals).delete(name);
  }

  /**
   * Names whose definition the server refused (a name in use, an error earlier in the batch or query
   * string): what the server holds under them is not what the agent planned, so they plan as untraced.
   */
  forget(names: Iterable<DefinedName>): void {
    for (const { kind, name } of names) this.close(kind, name);
  }

  /** Whether a SQL-level EXECUTE of `name` runs a statement this session prepared (by PREPARE or Parse). */
  knowsPrepared(name: string): boolean {
    return name !== '' && this.statements.has(name);
  }

  private statement(node: Node, lineage: Lineage, profile: MaskingProfile, defines: DefinedName[]): ResultPlan {
    const prepare = node.PrepareStmt as Node | undefined;
    if (prepare) {
      remember(this.statements, String(prepare.name), this.lineagePlan(lineage, profile));
      defines.push({ kind: 'S', name: String(prepare.name) });
    }
    const declare = node.DeclareCursorStmt as Node | undefined;
    if (declare) {
      remember(this.portals, String(declare.portalname), this.lineagePlan(lineage, profile));
      defines.push({ kind: 'P', name: String(declare.portalname) });
    }
    const execute = node.ExecuteStmt as Node | undefined;
    if (execute) return this.statements.get(String(execute.name)) ?? untracedPlan(profile);
    const fetch = node.FetchStmt as Node | undefined;
    if (fetch) return this.portals.get(String(fetch.portalname)) ?? untracedPlan(profile);
    const deallocate = node.DeallocateStmt as Node | undefined;
    if (deallocate) forgetNamed(this.statements, deallocate.name);
    const close = node.ClosePortalStmt as Node | undefined;
    if (close) forgetNamed(this.portals, close.portalname);
    if (node.DoStmt) return untracedPlan(profile);
    return this.lineagePlan(lineage, profile);
  }

  private lineagePlan(lineage: Lineage, profile: MaskingProfile): ResultPlan {
    const cached = this.byLineage.get(lineage);
    if (cached?.profile === profile) return cached.plan;
    const plan = planFromLineage(lineage, profile);
    this.byLineage.set(lineage, { profile, plan });
    return plan;
  }
}

function remember(names: Map<string, ResultPlan>, name: string, plan: ResultPlan): void {
  if (names.size < MAX_PLANNED_NAMES || names.has(name)) names.set(name, plan);
}

/** DEALLOCATE ALL and CLOSE ALL carry no name. */
function forgetNamed(names: Map<string, ResultPlan>, name: unknown): void {
  if (name === undefined) names.clear();
  else names.delete(String(name));
}
