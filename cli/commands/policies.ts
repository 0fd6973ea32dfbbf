import { readFile } from 'node:fs/promises';
import type { ApprovalRecord } from '../../core/approval/request';
import { oneLine } from '../../core/approval/visible-text';
import { parse, UsageError } from '../args';
import { apiCall, clientOptions, CONTROL_PLANE_OPTIONS, type ClientOptions } from '../control-plane-client';
import { EXIT } from '../exit-codes';

const PUT_USAGE = 'usage: twokey policies put FILE [--expected-version N] [--reason R] [--wait] | put FILE --emergency --reason R';
/** How often `--wait` asks whether the change was decided. */
const WAIT_POLL_MS = 1_000;
/** How long `--wait` goes on past the request's expiry before it gives up (the workflow records expiry by then). */
const WAIT_GRACE_MS = 60_000;

/**
 * `twokey policies get [--json]` and `twokey policies put FILE`. A change to a stored policy is
 * submitted for another admin's approval (exit 5, or with --wait: 0 once stored, 4 if denied or
 * expired, 1 if another change replaced its base version first). The first policy and an
 * `--emergency` change (with `--reason`) are stored at once (exit 0).
 */
export async function policiesCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parse(rest, {
    ...CONTROL_PLANE_OPTIONS,
    'expected-version': { type: 'string' },
    reason: { type: 'string' },
    emergency: { type: 'boolean', default: false },
    wait: { type: 'boolean', default: false },
  });
  const client = clientOptions(values);
  if (sub === 'get') {
    const { json } = await apiCall(client, 'GET', '/policies');
    const record = json as { version: number; source: string; updatedAt: string; updatedBy: string; approvedBy?: string[]; emergencyReason?: string };
    const how = record.emergencyReason !== undefined ? `, EMERGENCY change without approval: ${oneLine(record.emergencyReason, 200)}` : record.approvedBy ? `, approved by ${record.approvedBy.join(', ')}` : '';
    if (values.json) console.log(JSON.stringify(record, null, 2));
    else process.stdout.write(`# version ${record.version}, ${record.updatedAt} by ${oneLine(record.updatedBy, 200)}${how}\n${record.source}`);
    return 0;
  }
  if (sub !== 'put') throw new UsageError('usage: twokey policies get|put');
  const file = positionals[0];
  if (!file) throw new UsageError(PUT_USAGE);
  if (values.emergency && !values.reason?.trim()) throw new UsageError(`an emergency change needs --reason\n${PUT_USAGE}`);
  let expected = values['expected-version'];
  if (expected === undefined) {
    const current = await apiCall(client, 'GET', '/policies').catch(() => undefined);
    expected = String((current?.json as { version?: number } | undefined)?.version ?? 0);
  }
  const query = new URLSearchParams({ ...(values.reason ? { reason: values.reason } : {}), ...(values.emergency ? { emergency: 'true' } : {}) }).toString();
  const { status, json } = await apiCall(client, 'PUT', `/policies${query ? `?${query}` : ''}`, await readFile(file, 'utf8'), {
    'content-type': 'application/yaml',
    'if-match': `"${expected}"`,
  });
  if (status !== 202) {
    const stored = json as { version: number; emergency?: boolean };
    if (values.json) console.log(JSON.stringify(json));
    else console.log(`policy version ${stored.version} stored${stored.emergency ? ' (emergency change: every admin and auditor is told, and it is audited)' : ''}`);
    return EXIT.ran;
  }
  const submitted = json as { requestId: string; reviewers: number; expiresAt: string; baseVersion: number };
  if (values.json) console.log(JSON.stringify(json));
  else console.log(`policy change submitted for approval as request ${submitted.requestId}: ${submitted.reviewers} other admin(s) asked, expires ${submitted.expiresAt}`);
  if (!values.wait) return EXIT.submitted;
  return reportDecision(await waitForDecision(client, submitted.requestId, Date.parse(submitted.expiresAt) + WAIT_GRACE_MS));
}

/** Polls the approvals list until the request is decided and, if approved, applied or refused. */
async function waitForDecision(client: ClientOptions, requestId: string, deadline: number): Promise<ApprovalRecord | undefined> {
  while (Date.now() < deadline) {
    const { json } = await apiCall(client, 'GET', '/approvals');
    const record = (json as { approvals: ApprovalRecord[] }).approvals.find((r) => r.requestId === requestId);
    if (record && record.status !== 'pending' && (record.status !== 'approved' || record.policyChange?.result)) return record;
    await new Promise((r) => setTimeout(r, WAIT_POLL_MS));
  }
  return undefined;
}

function reportDecision(record: ApprovalRecord | undefined): number {
  if (!record) {
    console.error('no decision arrived in time; see twokey approvals list');
    return EXIT.failed;
  }
  const by = Object.values(record.votes)
    .map((v) => `${v.reviewer.email}${v.comment ? ` (${v.comment})` : ''}`)
    .join(', ');
  const result = record.policyChange?.result;
  if (record.status !== 'approved' || !result) {
    console.error(`request ${record.requestId} ${record.status}${by ? ` by ${by}` : ''}; the policy is unchanged`);
    return EXIT.refused;
  }
  if ('applied' in result) {
    console.log(`request ${record.requestId} approved by ${by}; policy version ${result.applied} stored`);
    return EXIT.ran;
  }
  if ('conflict' in result) {
    console.error(`request ${record.requestId} approved, but version ${result.conflict} had replaced the version it changes; the policy is unchanged (propose it again against version ${result.conflict})`);
    return EXIT.failed;
  }
  console.error(`request ${record.requestId} approved but refused: ${result.refused}; the policy is unchanged`);
  return EXIT.refused;
}
