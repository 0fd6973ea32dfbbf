import { actionHash } from '../../core/approval/request';
import { principalKey } from '../../core/identity/identity';
import type { Action, Decision } from '../../core/policy/decide';
import { classifyCommand } from '../../core/ssh/classify-command';
import { runsScpSink } from '../../core/ssh/scp-sink-command';
import type { AgentContext } from '../agent';
import { askApproval, type ApprovalOutcome, type ApprovalQuestion, type ApprovalWording } from '../approvals/approval-flow';
import { channelText, type CallerChannel } from '../sessions/channels';
import type { StartedSession } from '../sessions/lifecycle';
import type { SessionMaskingHandle } from '../sessions/session-masking';
import type { SshEvent } from './events';
import { blockSpellings } from './paths';
import type { UpstreamLogin } from './upstream';

/** How long a write window an approved interactive shell opens (the shell on the write login ends with it). */
export const SHELL_WINDOW_MINUTES = 60;
/** The environment variable (`ssh -o SetEnv=TWOKEY_REASON=...`) that carries the caller's reason for an approval. */
export const REASON_ENV = 'TWOKEY_REASON';

/**
 * Where an action runs, or why it does not. `stdin`: whether the caller's input reaches it. A command
 * approved for the write login runs without it: the reviewer saw the command, not the bytes a caller
 * would pipe into it.
 */
export type Verdict = { readonly kind: 'run'; readonly login: UpstreamLogin; readonly stdin: boolean } | { readonly kind: 'refused'; readonly message: string };

/** One SSH session on one target: what judging, channels and forwards all need of it. */
export interface SshSessionScope {
  readonly agent: AgentContext;
  readonly target: string;
  readonly session: StartedSession<SshEvent>;
  /** The session's masking: recorded decisions carry the action's text as masked (a command line may hold a secret). */
  readonly masking: SessionMaskingHandle;
}

export interface JudgeDeps extends SshSessionScope {
  /** One line for the caller (stderr), e.g. the pending approval's request id. */
  notify(line: string): void;
  /** Aborted when the caller goes away: a held action stops waiting. */
  readonly signal: AbortSignal;
  /** The caller's reason (TWOKEY_REASON), if given. */
  readonly reason: string | undefined;
  /** How the caller came when the agent opened the connection for them (MCP): policy and reviewers see it. */
  readonly channel?: CallerChannel;
}

const WORDING: ApprovalWording = { noun: 'command', reasonHint: 'Give a reason with ssh -o SetEnv=TWOKEY_REASON="why".' };

type DecisionDeps = Pick<JudgeDeps, 'agent' | 'target' | 'session' | 'masking' | 'channel'>;

/** The policy's decision on one action, with how the caller came (`via`) as every SSH check passes it. */
const decideFor = (deps: DecisionDeps, action: Action): Decision => deps.agent.decide(deps.session.identity, deps.target, { ...action, via: deps.channel?.via });

function recordDecision(deps: DecisionDeps, action: Action, text: string, decision: Decision): void {
  deps.session.record({ e: 'decision', text: deps.masking.value(text), class: action.class, decision: decision.kind, rule: decision.rule, reason: decision.kind === 'deny' ? decision.reason : undefined });
}

/** Decides one action and records the decision (each SFTP request that names a path is one such event). */
export function decideAndRecord(deps: DecisionDeps, action: Action, text: string): Decision {
  const decision = decideFor(deps, action);
  recordDecision(deps, action, text, decision);
  return decision;
}

/**
 * The refusal when the policy denies the action outright, decided once and recorded; undefined for an
 * allow or approve, which is judged (and recorded) later with what the reviewer reads: an upload at its
 * end, with its bytes.
 */
export function outrightRefusal(deps: DecisionDeps, action: Action, text: string): string | undefined {
  const decision = decideFor(deps, action);
  if (decision.kind !== 'deny') return undefined;
  recordDecision(deps, action, text, decision);
  return `twokey: ${decision.reason}`;
}

/** Decides one action and records the decision; an `approve` becomes the question for the approval flow. */
function judge(deps: JudgeDeps, action: Action, text: string, question: Pick<ApprovalQuestion, 'kind' | 'windowMinutes'>): Verdict | ApprovalQuestion {
  const { target, session } = deps;
  const decision = decideAndRecord(deps, action, text);
  if (decision.kind === 'deny') return { kind: 'refused', message: `twokey: ${decision.reason}` };
  // An allowed shell is the read account's: only an approved window puts a shell on the write login.
  if (decision.kind === 'allow') return { kind: 'run', login: action.class === 'read' || action.class === 'shell' ? 'read' : 'write', stdin: true };
  // A file change is hashed in a scope of its own: its review text run as a command (an upload's first
  // lines are a script) must not redeem the grant a late approval of the change left.
  const scope = action.ssh?.subsystem === undefined ? undefined : `file change over ${action.ssh.subsystem}`;
  return { ...question, target, protocol: 'ssh', identity: session.identity, via: deps.channel && channelText(deps.channel), text, sha256: actionHash({ kind: question.kind, text, scope }), class: action.class, decision, reason: deps.reason };
}

const isVerdict = (judged: Verdict | ApprovalQuestion): judged is Verdict => judged.kind === 'run' || judged.kind === 'refused';

async function approved(deps: JudgeDeps, question: ApprovalQuestion, stdin: boolean): Promise<Verdict> {
  const asked = await askApproval(question, WORDING, { gate: deps.agent.approvals, record: (e) => deps.session.record({ e: 'approval', ...e }), signal: deps.signal });
  let outcome: ApprovalOutcome;
  if (asked.kind === 'pending') {
    deps.notify(asked.notice);
    outcome = await asked.outcome;
  } else outcome = asked;
  if (outcome.kind === 'refused') return { kind: 'refused', message: outcome.hint ? `${outcome.message} (${outcome.hint})` : outcome.message };
  deps.notify(outcome.notice);
  return { kind: 'run', login: 'write', stdin };
}

/**
 * An exec request: classified as shell words (`pty`: whether a terminal was requested, which makes
 * pagers possible), decided by policy (blocks see the line and each simple command), run on the read
 * login only when it is a read, on the write login when allowed or approved as a write.
 */
export async function judgeExec(deps: JudgeDeps, command: string, pty: boolean): Promise<Verdict> {
  const classified = classifyCommand(command, { pty });
  const action: Action = { class: classified.class, ssh: { command, commands: classified.commands, paths: blockSpellings(classified.paths) } };
  // The agent serves scp's sink itself (scp/scp-upload.ts); any other spelling of it is refused whatever the policy.
  if (classified.commands.some(runsScpSink)) {
    const reason = 'an scp upload runs only as the command scp sends (scp [-r] [-d] [-p] -t PATH), which the agent serves itself';
    recordDecision(deps, action, command, { kind: 'deny', rule: undefined, reason });
    return { kind: 'refused', message: `twokey: ${reason}` };
  }
  const judged = judge(deps, action, command, { kind: 'statement' });
  if (isVerdict(judged)) return judged;
  const verdict = await approved(deps, judged, false);
  if (verdict.kind === 'run') deps.notify('twokey: the approved command runs without your input (stdin is closed)');
  return verdict;
}

/**
 * An interactive shell, its own policy class: allowed on the read login, or approved as a write window
 * (SHELL_WINDOW_MINUTES) on the write login; a window already open for the caller lets it run at once.
 */
export async function judgeShell(deps: JudgeDeps): Promise<Verdict> {
  const text = `interactive shell on ${deps.target}`;
  const judged = judge(deps, { class: 'shell' }, text, { kind: 'window', windowMinutes: SHELL_WINDOW_MINUTES });
  if (isVerdict(judged)) return judged;
  if (deps.agent.approvals.windowOpen(principalKey(deps.session.identity), deps.target)) return { kind: 'run', login: 'write', stdin: true };
  return approved(deps, judged, true);
}

/** A subsystem (only `sftp` is served): decided as a read with its name for blocks; what it does is checked per operation. */
export function judgeSubsystem(deps: JudgeDeps, name: string): Verdict {
  const judged = judge(deps, { class: 'read', ssh: { subsystem: name } }, `subsystem ${name}`, { kind: 'statement' });
  return isVerdict(judged) ? judged : { kind: 'refused', message: `twokey: subsystem ${name} cannot be approved as a whole` };
}

/**
 * An SFTP request that changes files (an upload on its CLOSE, a remove, a rename, ...): decided with
 * its paths, approved like a command when the policy says so (`text` is what the reviewer reads).
 */
export async function judgeFileChange(deps: JudgeDeps, paths: readonly string[], text: string): Promise<Verdict> {
  const judged = judge(deps, { class: 'write', ssh: { subsystem: 'sftp', paths } }, text, { kind: 'statement' });
  return isVerdict(judged) ? judged : approved(deps, judged, false);
}
