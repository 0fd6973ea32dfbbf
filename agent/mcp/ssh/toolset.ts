import type { Client } from 'ssh2';
import { z } from 'zod';
import { principalKey } from '../../../core/identity/identity';
import { HOLD_GRACE_SECONDS, parsePendingNotice } from '../../approvals/approval-flow';
import { REFUSED_EXIT_STATUS } from '../../ssh/session-channel';
import { answerWithin, HeldAction, MAX_TRACKED_RESULT_BYTES, requestStatusTool, withHeldSlot } from '../held-executions';
import { listedForAnyUse, type ToolsetDeps } from '../toolset-deps';
import { MCP_CALL_BUDGET_SECONDS, notServed, refusal, tool, type McpTool, type McpToolset, type ToolCall, type ToolOutcome } from '../tool-registry';
import { openCallerSsh, runExec, type ExecOutput } from './caller-exec';

/** Largest command line `ssh_exec` takes (OpenSSH's own limit on a command is larger; a review is smaller still). */
export const MAX_SSH_COMMAND_BYTES = 16 * 1024;
/** Largest stdin `ssh_exec` passes to a command (within one MCP request; an approved write runs without it, as with `ssh`). */
export const MAX_SSH_STDIN_BYTES = 128 * 1024;
/** The longest `ssh_exec` waits for a decision within one call. */
export const MAX_SSH_WAIT_SECONDS = MCP_CALL_BUDGET_SECONDS;
/** The longest a command runs once it runs; then its connection is closed. */
export const SSH_EXEC_TIMEOUT_MS = MCP_CALL_BUDGET_SECONDS * 1000;

const outputJson = (o: ExecOutput) => ({ exit_code: o.exitCode, signal: o.signal, stdout: o.stdout, stderr: o.stderr, truncated: o.truncated });

/** What ssh_request_status keeps of an approved command's output: MAX_TRACKED_RESULT_BYTES of stdout and stderr together, `truncated` when cut. */
function trackedOutput(o: ExecOutput): ReturnType<typeof outputJson> {
  const cut = (text: string): string => Buffer.from(text).subarray(0, MAX_TRACKED_RESULT_BYTES / 2).toString('utf8');
  const stdout = cut(o.stdout);
  const stderr = cut(o.stderr);
  return outputJson({ ...o, stdout, stderr, truncated: o.truncated || stdout !== o.stdout || stderr !== o.stderr });
}
const outputSummary = (o: ExecOutput): string => `exit ${o.exitCode ?? o.signal}; stdout ${Buffer.byteLength(o.stdout)} bytes, stderr ${Buffer.byteLength(o.stderr)} bytes${o.truncated ? '; truncated' : ''}`;

/**
 * The listener's refusal, when the exec ended as one: nothing ran (no stdout), status 126 and only
 * `twokey:` lines on stderr. Its last line is the reason (a reviewer's comment included).
 */
function refusalOf(o: ExecOutput): string | undefined {
  if (o.exitCode !== REFUSED_EXIT_STATUS || o.stdout !== '') return undefined;
  const lines = o.stderr.split(/\r?\n/).filter((l) => l !== '');
  return lines.length && lines.every((l) => l.startsWith('twokey: ')) ? lines[lines.length - 1] : undefined;
}

/** The SSH tools: `ssh_exec` (one command through the agent's own SSH listener) and `ssh_request_status`. */
export function sshToolset(deps: ToolsetDeps): McpToolset {
  const available = listedForAnyUse(deps);

  const sshExec: McpTool<z.ZodObject<{ command: z.ZodString; stdin: z.ZodOptional<z.ZodString>; wait_seconds: z.ZodOptional<z.ZodNumber> }>> = {
    name: 'ssh_exec',
    description: `Runs one command on the target over SSH as the policy says: reads on the read login; writes at once where allowed, otherwise sent to reviewers (status pending_approval with the request id; with wait_seconds up to ${MAX_SSH_WAIT_SECONDS}, waits for the decision). Returns exit_code or signal, stdout and stderr (masked, at most 1 MiB each, truncated set when there was more). stdin (up to ${MAX_SSH_STDIN_BYTES} bytes) is passed to reads and allowed writes only: an approved command runs without it.`,
    args: z.strictObject({
      command: z
        .string()
        .min(1)
        .refine((s) => Buffer.byteLength(s) <= MAX_SSH_COMMAND_BYTES, `at most ${MAX_SSH_COMMAND_BYTES} bytes`)
        .describe('The command line, as ssh would send it'),
      stdin: z
        .string()
        .refine((s) => Buffer.byteLength(s) <= MAX_SSH_STDIN_BYTES, `at most ${MAX_SSH_STDIN_BYTES} bytes`)
        .optional()
        .describe('Text for the command to read on stdin'),
      wait_seconds: z.number().int().min(0).max(MAX_SSH_WAIT_SECONDS).optional(),
    }),
    available,
    async call(args, call) {
      const principal = principalKey(call.identity);
      const address = deps.addressOf(call.target.name);
      if (!address) return notServed(call.target.name);
      return withHeldSlot(deps.held, principal, async () => {
        let client: Client;
        try {
          client = await openCallerSsh(address, call.token, { registry: deps.channels, is: { via: 'mcp', client: call.client } });
        } catch {
          return refusal('deny', `twokey: the SSH listener for ${call.target.name} did not accept you`);
        }
        return runHeldExec(client, args.command, args.stdin, args.wait_seconds ?? 0, call, principal);
      });
    },
  };

  /**
   * The command on its own connection: its end (or refusal) is the answer; once the listener says a
   * request is pending, the call waits up to `waitSeconds`, then returns `pending_approval` while the
   * connection waits on for the decision and the approved run. Every run is bounded in time.
   */
  function runHeldExec(client: Client, command: string, stdin: string | undefined, waitSeconds: number, call: ToolCall, principal: string): Promise<ToolOutcome> {
    const action = new HeldAction(deps.held, principal, call.target.name);
    let timedOut = false;
    const stop = (ms: number): NodeJS.Timeout =>
      setTimeout(() => {
        timedOut = true;
        client.end();
      }, ms).unref();
    let timer = stop(SSH_EXEC_TIMEOUT_MS);
    const run = runExec(client, command, stdin, (line) => {
      const p = parsePendingNotice(line);
      if (!p || !action.sent(p)) return;
      clearTimeout(timer);
      timer = stop((p.timeoutSeconds + HOLD_GRACE_SECONDS) * 1000 + SSH_EXEC_TIMEOUT_MS);
    });
    const settled = run.then(
      (o): ToolOutcome => {
        const refused = timedOut ? `twokey: the command ran longer than ${SSH_EXEC_TIMEOUT_MS / 1000}s and was stopped` : refusalOf(o);
        if (refused !== undefined) {
          action.refused(refused);
          return refusal(action.requestId ? 'approve' : 'deny', refused);
        }
        action.ran(trackedOutput(o));
        const id = action.requestId;
        return { ok: true, decision: id ? 'approve' : 'allow', result: { status: id ? 'approved' : 'done', request_id: id, ...outputJson(o) }, summary: outputSummary(o) };
      },
      (): ToolOutcome => {
        const message = 'twokey: the connection to the SSH listener failed';
        action.failed(message);
        return refusal(action.requestId ? 'approve' : 'error', message);
      },
    );
    void settled.finally(() => {
      clearTimeout(timer);
      client.end();
    });
    return answerWithin(settled, action.pending, waitSeconds);
  }

  const requestStatus = requestStatusTool('ssh_request_status', 'The state of a command sent for review through ssh_exec: pending, approved (with its output), denied (with the reviewer comment), expired or failed.', deps.held, available);

  return { protocol: 'ssh', tools: [tool(sshExec), requestStatus] };
}
