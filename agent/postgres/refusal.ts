import type { Decision } from '../../core/policy/decide';
import { SQLSTATE } from './protocol/codes';
import type { ErrorFields } from './protocol/writer';

/** The ErrorResponse for a statement twokey will not run now. */
export function refusal(decision: Exclude<Decision, { kind: 'allow' }>): ErrorFields {
  if (decision.kind === 'deny') {
    return { severity: 'ERROR', code: SQLSTATE.insufficientPrivilege, message: `twokey: ${decision.reason}`, detail: decision.rule ? `rule: ${decision.rule}` : undefined };
  }
  const a = decision.approval;
  return {
    severity: 'ERROR',
    code: SQLSTATE.insufficientPrivilege,
    message: `twokey: approval required (rule ${decision.rule}): ${a.min} approval(s) from ${a.groups.join(', ')}`,
    hint: 'This statement needs a reviewer’s approval before it can run.',
  };
}
