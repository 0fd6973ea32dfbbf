import type { Identity } from '../../core/identity/identity';
import type { Action, Decision } from '../../core/policy/decide';
import type { ActionClass } from '../../core/policy/schema';
import type { StatementClassifier } from './classify/classifier';
import type { CallerChannel } from '../sessions/channels';
import { CLASS_RANK, type Classification } from './classify/classify';

/** SQL-level PREPAREd names a session keeps the class of (more are not tracked: their EXECUTE is `unknown`). */
export const MAX_PREPARED_PER_SESSION = 10_000;

/** One statement judged: the policy's decision, its effective class, and what it drops (DEALLOCATE). */
export interface Judgement {
  readonly decision: Decision;
  readonly class: ActionClass;
  readonly classification: Classification;
}

/**
 * Judges a session's statements: classifies each (with the session's `standard_conforming_strings`),
 * resolves EXECUTE to the class its statement was PREPAREd with (tracked per session; an unknown name
 * is `unknown`), and asks `decide()`. One per session; no I/O.
 */
export class StatementJudge {
  /** SQL-level PREPARE names and the class of what they prepared. */
  private readonly sqlPrepared = new Map<string, ActionClass>();

  constructor(
    private readonly classifier: StatementClassifier,
    private readonly decide: (identity: Identity, target: string, action: Action) => Decision,
    private readonly target: string,
    private readonly identity: Identity,
    /** The policy may ask more of an AI agent's writes (a target's `mcpWrites`). */
    private readonly channel?: CallerChannel,
  ) {}

  judge(sql: string, standardConformingStrings: boolean): Judgement {
    const classification = this.classifier.classify(sql, standardConformingStrings);
    const cls = this.effectiveClass(classification);
    const decision = this.decide(this.identity, this.target, { class: cls, statements: classification.statements, tables: classification.tables, functions: classification.functions, via: this.channel?.via });
    if (decision.kind === 'allow') this.track(classification);
    return { decision, class: cls, classification };
  }

  /** The policy's decision for an action the agent itself stands for (a write window asks for `write`). */
  decideClass(cls: ActionClass): Decision {
    return this.decide(this.identity, this.target, { class: cls, via: this.channel?.via });
  }

  /** EXECUTE takes the class its statement was prepared with; an unknown name is `unknown`. */
  private effectiveClass(c: Classification): ActionClass {
    let cls = c.class;
    // The common case (no EXECUTE) allocates nothing: this runs for every statement.
    if (c.executes.length === 0) return cls;
    const preparedHere = new Map(c.prepares.map((p) => [p.name, p.class]));
    for (const name of c.executes) {
      const prepared = preparedHere.get(name) ?? this.sqlPrepared.get(name) ?? 'unknown';
      if (CLASS_RANK[prepared] > CLASS_RANK[cls]) cls = prepared;
    }
    return cls;
  }

  private track(c: Classification): void {
    if (c.deallocates === 'all') this.sqlPrepared.clear();
    else for (const name of c.deallocates) this.sqlPrepared.delete(name);
    for (const p of c.prepares) {
      if (this.sqlPrepared.size >= MAX_PREPARED_PER_SESSION) break;
      this.sqlPrepared.set(p.name, p.class);
    }
  }
}
