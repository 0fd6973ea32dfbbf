import { windowRequestProblem } from '../approvals/approval-flow';
import type { Held } from './approval/held-approvals';
import { simpleStatement } from './approval/approved-request';
import { SQLSTATE } from './protocol/codes';
import { commandComplete, errorResponse } from './protocol/writer';
import type { StatementJudge } from './statement-judge';

/** `SET [SESSION|LOCAL] twokey.<name> = '...'` (or TO, or an unquoted word): the agent's own settings. */
export function twokeySetting(sql: string): { name: string; value: string } | undefined {
  const m = /^\s*set\s+(?:session\s+|local\s+)?twokey\.([a-z_]+)\s*(?:=|to)\s*(?:'((?:[^']|'')*)'|([A-Za-z0-9_]+))\s*;?\s*$/i.exec(sql);
  if (!m) return undefined;
  return { name: (m[1] ?? '').toLowerCase(), value: m[2] !== undefined ? m[2].replace(/''/g, "'") : (m[3] ?? '') };
}

/** What a `SET twokey.<name>` asks of the session: an answer made here, or a request to hold for approval. */
export type SettingOutcome = { readonly kind: 'answer'; readonly messages: Buffer[] } | { readonly kind: 'hold'; readonly held: Held };

/**
 * The agent's own session settings, answered here and never sent upstream: `twokey.reason` (sent with
 * approval requests), `twokey.script = on` (the next Query is a whole script, approved and run as
 * one: `twokey exec`) and `twokey.request_access = <minutes>` (a write window, held for approval).
 */
export class AgentSettings {
  reason: string | undefined;
  private scriptNext = false;

  /** Whether the Query now judged is a script (the setting applies to one Query). */
  takeScript(): boolean {
    const script = this.scriptNext;
    this.scriptNext = false;
    return script;
  }

  apply(name: string, value: string, judge: StatementJudge, target: string): SettingOutcome {
    const set: SettingOutcome = { kind: 'answer', messages: [commandComplete('SET')] };
    if (name === 'reason') {
      this.reason = value || undefined;
      return set;
    }
    if (name === 'script') {
      this.scriptNext = value === 'on';
      return set;
    }
    if (name === 'request_access') {
      const minutes = Number(value);
      const decision = judge.decideClass('write');
      const problem = windowRequestProblem(minutes, decision);
      if (problem || decision.kind !== 'approve') {
        const code = problem?.kind === 'invalid' ? SQLSTATE.featureNotSupported : SQLSTATE.insufficientPrivilege;
        return { kind: 'answer', messages: [errorResponse({ severity: 'ERROR', code, message: problem?.message ?? 'twokey: writes on this target need no approval' })] };
      }
      const text = `write access to ${target} for ${minutes} minute(s)`;
      return { kind: 'hold', held: { kind: 'window', statement: simpleStatement(text), decision, cls: 'write', windowMinutes: minutes } };
    }
    return { kind: 'answer', messages: [errorResponse({ severity: 'ERROR', code: SQLSTATE.featureNotSupported, message: `twokey: unknown setting twokey.${name}` })] };
  }
}
