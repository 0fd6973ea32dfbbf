import type { ApprovalSummary } from '../../core/approval/request';
import { oneLine } from '../../core/approval/visible-text';
import { parse, UsageError } from '../args';
import { apiCall, clientOptions, CONTROL_PLANE_OPTIONS } from '../control-plane-client';
import { addPage, PAGE_OPTIONS, tellNext } from '../page-options';

const USAGE = 'usage: twokey approvals list [--limit N] [--next TOKEN] [--json]';

/** `twokey approvals list [--limit N] [--next TOKEN] [--json]`: a page of the requests you review or made (all of them for admins), newest first. */
export async function approvalsCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'list') throw new UsageError(USAGE);
  const { values } = parse(rest, { ...CONTROL_PLANE_OPTIONS, ...PAGE_OPTIONS });
  const q = addPage(new URLSearchParams(), values, USAGE);
  const { json } = await apiCall(clientOptions(values), 'GET', `/approvals${q.size ? `?${q}` : ''}`);
  if (values.json) {
    console.log(JSON.stringify(json, null, 2));
    return 0;
  }
  const { approvals, next } = json as { approvals: ApprovalSummary[]; next?: string };
  console.log(['REQUEST'.padEnd(36), 'STATUS'.padEnd(9), 'TARGET'.padEnd(14), 'REQUESTER'.padEnd(20), 'VOTES'.padEnd(6), 'STATEMENT'].join(' '));
  for (const a of approvals) {
    const votes = `${Object.values(a.votes).filter((v) => v.decision === 'approve').length}/${a.approval.min}`;
    // Requester-written text reaches a terminal: control characters (escape sequences) are shown escaped.
    const change = a.policyChange;
    const text = change ? `policy version ${change.baseVersion} → ${change.baseVersion + 1} (+${change.added} -${change.removed} lines)` : oneLine(a.preview.replace(/\s+/g, ' '), 60);
    console.log([a.requestId.padEnd(36), a.status.padEnd(9), a.target.padEnd(14), oneLine(a.requester.subject, 20).padEnd(20), votes.padEnd(6), text].join(' '));
  }
  tellNext('twokey approvals list', next);
  return 0;
}
