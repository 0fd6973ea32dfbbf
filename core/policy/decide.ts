import { principalKey, type Identity } from '../identity/identity';
import { matchesAny } from '../glob';
import type { ActionClass, BlockableStatement, DecisionSpec, PolicyBlock, PolicyDocument, PolicyMask, PolicyRule, RecordingSettings, UserName } from './schema';

/**
 * What the caller wants to do, as the protocol's classifier understood it: a class every rule speaks
 * to, and the facets of its protocol that block rules can name. One type for every protocol, so that
 * one `decide()` serves them all.
 */
export interface Action {
  readonly class: ActionClass;
  // Postgres (flat: the proxy builds one per statement)
  /** Statement kinds that block rules can name (e.g. `drop`, `update-without-where`). */
  readonly statements?: readonly BlockableStatement[];
  /** Schema-qualified relation names the action touches. */
  readonly tables?: readonly string[];
  /** Schema-qualified function names the action calls. */
  readonly functions?: readonly string[];
  readonly kubernetes?: KubernetesRequest;
  readonly ssh?: SshRequest;
  /** Set when the action came from an AI agent through the agent's MCP endpoint (never from what a caller sends). */
  readonly via?: 'mcp';
}

/** Classes that change nothing: everything else is a write for `mcpWrites`. */
const READ_ONLY_CLASSES: readonly ActionClass[] = ['control', 'read'];

/** A Kubernetes API request's attributes (the API conventions' verb, group, resource, ...). */
export interface KubernetesRequest {
  readonly verb: string;
  /** API group; '' for the core group. */
  readonly group: string;
  readonly resource: string;
  readonly namespace?: string;
  readonly name?: string;
  readonly subresource?: string;
  /** A collection request (list, watch, deletecollection, create): it touches every name, so blocks naming names apply. */
  readonly everyName?: boolean;
  /** A collection request across all namespaces (`kubectl get secrets -A`): blocks naming namespaces apply. */
  readonly everyNamespace?: boolean;
}

/** An SSH channel request: a command, a subsystem, and the paths a file transfer touches. */
export interface SshRequest {
  readonly command?: string;
  /** Each simple command the command line runs (the classifier's `commands`), matched one by one. */
  readonly commands?: readonly string[];
  readonly subsystem?: string;
  readonly paths?: readonly string[];
  /** A `direct-tcpip` destination (`host:port`): only rules whose `forwards` name it speak to it. */
  readonly forward?: string;
}

export interface ApprovalRequirement {
  readonly groups: readonly string[];
  readonly min: number;
  readonly timeoutSeconds: number;
  readonly requireReason: boolean;
}

export type Decision =
  | { readonly kind: 'allow'; readonly rule: string; readonly masks: readonly PolicyMask[] }
  | { readonly kind: 'approve'; readonly rule: string; readonly approval: ApprovalRequirement; readonly masks: readonly PolicyMask[] }
  | { readonly kind: 'deny'; readonly rule: string | undefined; readonly reason: string };

/**
 * Whether a policy name is this caller: the same subject at the same issuer, or (for `{ email }`) a
 * verified address at that issuer. Subjects are compared exactly: a `sub` is case-sensitive.
 */
export function userMatches(user: UserName, identity: Identity, defaultIssuer: string | undefined): boolean {
  const named = typeof user === 'string' ? { subject: user } : user;
  const issuer = named.issuer ?? defaultIssuer;
  if (issuer === undefined) return false;
  if ('subject' in named) return principalKey({ issuer, subject: named.subject }) === principalKey(identity);
  return issuer === identity.issuer && identity.email !== undefined && identity.email.toLowerCase() === named.email.toLowerCase();
}

export function subjectMatches(subjects: { users: readonly UserName[]; groups: readonly string[] }, identity: Identity, defaultIssuer: string | undefined): boolean {
  if (subjects.users.some((u) => userMatches(u, identity, defaultIssuer))) return true;
  return subjects.groups.some((g) => identity.groups.includes(g));
}

/** Decision for one class from one rule; `control` falls back to the rule's `read` decision. */
function specFor(rule: PolicyRule, cls: ActionClass): DecisionSpec | undefined {
  return rule.actions[cls] ?? (cls === 'control' ? rule.actions.read : undefined);
}

const SEVERITY = { allow: 0, approve: 1, deny: 2 } as const;

function approvalOf(spec: Exclude<DecisionSpec, 'allow' | 'deny'>): ApprovalRequirement {
  return spec.approve;
}

/** Approval that asks more of reviewers is the more restrictive one. */
function stricterApproval(a: ApprovalRequirement, b: ApprovalRequirement): boolean {
  if (a.min !== b.min) return a.min > b.min;
  if (a.requireReason !== b.requireReason) return a.requireReason;
  return a.timeoutSeconds < b.timeoutSeconds;
}

/**
 * The policy decision for one action. Pure. Default deny: an action no rule speaks to is refused.
 * Block rules come first; among the matching rules the most restrictive decision wins
 * (deny over approve over allow).
 */
export function decide(identity: Identity, target: string, action: Action, policy: PolicyDocument): Decision {
  if (!policy.targets.some((t) => t.name === target)) {
    return { kind: 'deny', rule: undefined, reason: `target ${target} is not in the policy` };
  }
  for (const block of policy.blocks) {
    if (!matchesAny(block.targets, target)) continue;
    if (block.subjects && !subjectMatches(block.subjects, identity, policy.issuer)) continue;
    const hit = blockedFacet(block, action);
    if (hit !== undefined) return { kind: 'deny', rule: block.name, reason: `blocked by ${block.name} (${hit})` };
  }

  let chosen: { rule: PolicyRule; spec: DecisionSpec } | undefined;
  for (const rule of policy.rules) {
    if (!matchesAny(rule.targets, target) || !subjectMatches(rule.subjects, identity, policy.issuer)) continue;
    const forward = action.ssh?.forward;
    if (forward !== undefined && !(rule.forwards && matchesAny(rule.forwards, forward))) continue;
    const spec = specFor(rule, action.class);
    if (spec === undefined) continue;
    if (!chosen || isStricter(spec, chosen.spec)) chosen = { rule, spec };
  }
  if (!chosen) {
    const what = action.ssh?.forward !== undefined ? `forwarding to ${action.ssh.forward}` : action.class;
    return { kind: 'deny', rule: undefined, reason: `no rule grants ${what} on ${target}` };
  }
  if (chosen.spec === 'deny') {
    return { kind: 'deny', rule: chosen.rule.name, reason: `${action.class} denied by rule ${chosen.rule.name}` };
  }
  const masks = masksFor(identity, target, policy);
  if (chosen.spec === 'allow') {
    const mcpWrites = action.via === 'mcp' && !READ_ONLY_CLASSES.includes(action.class) ? policy.targets.find((t) => t.name === target)?.mcpWrites : undefined;
    // Named for what asked for the approval (the target's mcpWrites), in the policy's own name syntax.
    if (mcpWrites) return { kind: 'approve', rule: 'mcpWrites', approval: approvalOf(mcpWrites), masks };
    return { kind: 'allow', rule: chosen.rule.name, masks };
  }
  return { kind: 'approve', rule: chosen.rule.name, approval: approvalOf(chosen.spec), masks };
}

/** The facet of the action a block names (for the reason the caller is shown), or undefined. */
function blockedFacet(block: PolicyBlock, action: Action): string | undefined {
  const pg =
    action.statements?.find((s) => block.statements.includes(s)) ??
    action.tables?.find((t) => matchesAny(block.tables, t)) ??
    action.functions?.find((f) => matchesAny(block.functions, f));
  if (pg !== undefined) return pg;
  if (action.kubernetes && block.requests) return blockedRequest(block.requests, action.kubernetes);
  const ssh = action.ssh;
  if (!ssh) return undefined;
  const commands = block.commands;
  if (commands && ssh.command !== undefined && matchesAny(commands, ssh.command)) return ssh.command;
  const command = commands ? ssh.commands?.find((c) => matchesAny(commands, c)) : undefined;
  if (command !== undefined) return command;
  if (ssh.subsystem !== undefined && block.subsystems?.includes(ssh.subsystem)) return ssh.subsystem;
  const paths = block.paths;
  return paths ? ssh.paths?.find((p) => matchesAny(paths, p)) : undefined;
}

/** A Kubernetes request one of a block's entries names: every field the entry gives matches. */
function blockedRequest(requests: NonNullable<PolicyBlock['requests']>, k: KubernetesRequest): string | undefined {
  const resource = k.group ? `${k.group}/${k.resource}` : k.resource;
  const given = (v: readonly string[] | undefined): v is readonly string[] => v !== undefined && v.length > 0;
  const named = requests.some(
    (r) =>
      (!given(r.verbs) || r.verbs.includes(k.verb)) &&
      (!given(r.resources) || matchesAny(r.resources, resource)) &&
      (!given(r.namespaces) || (k.namespace !== undefined ? matchesAny(r.namespaces, k.namespace) : k.everyNamespace === true)) &&
      (!given(r.names) || (k.name !== undefined ? matchesAny(r.names, k.name) : k.everyName === true)) &&
      (!given(r.subresources) || (k.subresource !== undefined && r.subresources.includes(k.subresource))),
  );
  return named ? `${k.verb} ${resource}${k.subresource ? `/${k.subresource}` : ''}` : undefined;
}

/** The mask rules that apply to a subject on a target. */
export function masksFor(identity: Identity, target: string, policy: PolicyDocument): PolicyMask[] {
  return policy.masks.filter((m) => matchesAny(m.targets, target) && subjectMatches(m.subjects, identity, policy.issuer));
}

function severity(spec: DecisionSpec): number {
  return typeof spec === 'string' ? SEVERITY[spec] : SEVERITY.approve;
}

function isStricter(a: DecisionSpec, b: DecisionSpec): boolean {
  const sa = severity(a);
  const sb = severity(b);
  if (sa !== sb) return sa > sb;
  return typeof a === 'object' && typeof b === 'object' && stricterApproval(approvalOf(a), approvalOf(b));
}

/** How a target's sessions are recorded: the policy's recording section, with the target's own fields over it. */
export function recordingFor(policy: PolicyDocument, target: string): RecordingSettings {
  const own = policy.targets.find((t) => t.name === target)?.recording;
  if (!own) return policy.recording;
  return { mode: own.mode ?? policy.recording.mode, maxRowsPerStatement: own.maxRowsPerStatement ?? policy.recording.maxRowsPerStatement, input: own.input ?? policy.recording.input };
}

/** Targets the policy assigns to an agent. */
export function targetsOfAgent(policy: PolicyDocument, agent: string): string[] {
  return policy.targets.filter((t) => t.agent === agent).map((t) => t.name);
}
