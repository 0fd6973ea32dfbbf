import { z } from 'zod';
import { slackSettingsSchema } from './slack-settings';
import { principalKey } from '../identity/identity';
import { DETECTOR_NAMES } from '../masking/detectors';

/**
 * Action classes in increasing privilege. `control` (BEGIN, harmless SET) takes the `read` decision unless a rule names it.
 * `shell` is an interactive SSH shell: nothing can be judged inside it, so only a rule naming it decides.
 */
export const ACTION_CLASSES = ['control', 'read', 'write', 'ddl', 'admin', 'shell', 'unknown'] as const;
export type ActionClass = (typeof ACTION_CLASSES)[number];

export const PROTOCOLS = ['postgres', 'kubernetes', 'ssh'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

export const MAX_APPROVAL_TIMEOUT_SECONDS = 7 * 24 * 3600;
export const DEFAULT_APPROVAL_TIMEOUT_SECONDS = 900;
export const DEFAULT_RESULT_ROWS_RECORDED = 1000;
export const MAX_REVIEWERS_PER_GROUP = 100;

const name = z.string().min(1).max(128).regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, dot, dash and underscore only');
const glob = z.string().min(1).max(256);
/** No whitespace or control characters: an address ends up in mail headers. */
const email = z.string().max(254).regex(/^[^\s@\p{C}]+@[^\s@\p{C}]+$/u, 'an email address');
const issuer = z.string().url().max(1024);
const subject = z.string().min(1).max(256);

/**
 * How a policy names a person. A bare string is a subject (`sub`) at the policy's `issuer`;
 * `{ subject, issuer }` names another issuer; `{ email }` matches only an address the issuer marked
 * verified. Never a bare address: `sub` and `email` are different claims, and a string that means
 * either could be satisfied by a claim the person controls.
 */
export const userName = z.union([
  subject,
  z.strictObject({ subject, issuer: issuer.optional() }),
  z.strictObject({ email, issuer: issuer.optional() }),
]);
export type UserName = z.infer<typeof userName>;

/**
 * One reviewer: who they are at the IdP (`subject`, at `issuer` or the policy's) and the mailbox their
 * links go to. The subject is what keeps requesters from reviewing themselves; the address alone
 * proves only that someone reads that mailbox.
 */
const reviewer = z.strictObject(
  { subject, email, issuer: issuer.optional() },
  {
    error: (issue) =>
      typeof issue.input === 'string' ? 'a reviewer is { subject, email } (issuer optional): a bare address cannot be told apart from the requester' : undefined,
  },
);

const subjects = z
  .strictObject({
    users: z.array(userName).default([]),
    groups: z.array(z.string().min(1)).default([]),
  })
  .refine((s) => s.users.length + s.groups.length > 0, 'name at least one user or group');

const approve = z.strictObject({
  approve: z.strictObject({
    groups: z.array(z.string().min(1)).min(1),
    min: z.number().int().min(1).max(10).default(1),
    timeoutSeconds: z.number().int().min(10).max(MAX_APPROVAL_TIMEOUT_SECONDS).default(DEFAULT_APPROVAL_TIMEOUT_SECONDS),
    requireReason: z.boolean().default(false),
  }),
});

export const decisionSpec = z.union([z.literal('allow'), z.literal('deny'), approve]);

const actions = z.strictObject({
  control: decisionSpec.optional(),
  read: decisionSpec.optional(),
  write: decisionSpec.optional(),
  ddl: decisionSpec.optional(),
  admin: decisionSpec.optional(),
  shell: decisionSpec.optional(),
  unknown: decisionSpec.optional(),
});

export const BLOCKABLE_STATEMENTS = [
  'drop',
  'truncate',
  'delete-without-where',
  'update-without-where',
  'alter',
  'grant',
  'copy-program',
] as const;

const RECORDING_MODES = ['strict', 'best-effort', 'off'] as const;
const maxRowsPerStatement = z.number().int().min(0).max(1_000_000);
/** Whether terminal sessions (SSH shells and execs, kubectl exec) record the caller's keystrokes too (off unless asked: they may hold passwords typed at prompts). */
const recordInput = z.boolean();
/** Recording when a policy says nothing of it (and on an agent that has no policy yet). */
export const DEFAULT_RECORDING = { mode: 'best-effort', maxRowsPerStatement: DEFAULT_RESULT_ROWS_RECORDED } as const;

const target = z.strictObject({
  name,
  protocol: z.enum(PROTOCOLS),
  agent: name,
  description: z.string().max(1024).optional(),
  /** Overrides the policy's recording section for this target's sessions, field by field. */
  recording: z.strictObject({ mode: z.enum(RECORDING_MODES).optional(), maxRowsPerStatement: maxRowsPerStatement.optional(), input: recordInput.optional() }).optional(),
  /** Writes from AI agents (through the agent's MCP endpoint) need this approval even where a rule allows the caller to write. */
  mcpWrites: approve.optional(),
});

const rule = z.strictObject({
  name,
  targets: z.array(glob).min(1),
  subjects,
  actions,
  /** SSH `-L` destinations (`host:port` globs) this rule lets its subjects reach, under its `read` decision; none when absent. */
  forwards: z.array(glob).optional(),
});

/**
 * A Kubernetes API request a block names: every field given must match (verbs and subresources
 * exactly, the rest as globs); `resources` are `group/resource`, or `resource` for the core group.
 */
const kubernetesRequest = z
  .strictObject({
    verbs: z.array(z.string().min(1)).optional(),
    resources: z.array(glob).optional(),
    namespaces: z.array(glob).optional(),
    names: z.array(glob).optional(),
    subresources: z.array(z.string().min(1)).optional(),
  })
  .refine((r) => Object.values(r).some((v) => v !== undefined && v.length > 0), 'a Kubernetes request names verbs, resources, namespaces, names or subresources');

const block = z
  .strictObject({
    name,
    targets: z.array(glob).min(1),
    subjects: subjects.optional(),
    // Postgres
    statements: z.array(z.enum(BLOCKABLE_STATEMENTS)).default([]),
    tables: z.array(glob).default([]),
    functions: z.array(glob).default([]),
    // Kubernetes and SSH facets stay absent unless named: the control plane sends agents the parsed
    // document, and an agent from before these facets refuses a block carrying keys it does not know.
    requests: z.array(kubernetesRequest).optional(),
    // SSH: command lines (globs), subsystems (`sftp`), and paths a file transfer touches (globs)
    commands: z.array(glob).optional(),
    subsystems: z.array(z.string().min(1)).optional(),
    paths: z.array(glob).optional(),
  })
  .refine(
    (b) =>
      b.statements.length + b.tables.length + b.functions.length + (b.requests?.length ?? 0) + (b.commands?.length ?? 0) + (b.subsystems?.length ?? 0) + (b.paths?.length ?? 0) > 0,
    'a block names statements, tables, functions, Kubernetes requests, commands, subsystems or paths',
  );

const mask = z.strictObject({
  name,
  targets: z.array(glob).min(1),
  subjects,
  columns: z.array(glob).default([]),
  /** Content detectors to run; all of them when omitted, none with []. */
  detectors: z.array(z.enum(DETECTOR_NAMES)).optional(),
  /** Source columns the detectors run on; every column when omitted (computed columns always). */
  scanColumns: z.array(glob).optional(),
  style: z.enum(['full', 'partial', 'hash']).default('full'),
  strict: z.boolean().default(false),
});

const policyShape = z.strictObject({
  /** The issuer of every user and reviewer that names none (the deployment's IdP). */
  issuer: issuer.optional(),
  targets: z.array(target).default([]),
  /** Approver group -> its reviewers. */
  reviewers: z.record(z.string().min(1), z.array(reviewer).max(MAX_REVIEWERS_PER_GROUP)).default({}),
  slack: slackSettingsSchema.optional(),
  /** Reviewer groups whose votes count only from a reviewer signed in with the IdP on the review page. */
  reviewerSignIn: z.array(z.string().min(1)).optional(),
  rules: z.array(rule).default([]),
  blocks: z.array(block).default([]),
  masks: z.array(mask).default([]),
  recording: z
    .strictObject({
      mode: z.enum(RECORDING_MODES).default(DEFAULT_RECORDING.mode),
      maxRowsPerStatement: maxRowsPerStatement.default(DEFAULT_RECORDING.maxRowsPerStatement),
      input: recordInput.optional(),
    })
    .default(DEFAULT_RECORDING),
});

export const policySchema = policyShape.superRefine((p, ctx) => {
  checkNames(p, ctx);
  const seen = new Set<string>();
  p.targets.forEach((t, i) => {
    if (seen.has(t.name)) ctx.addIssue({ code: 'custom', path: ['targets', i, 'name'], message: `duplicate target ${t.name}` });
    seen.add(t.name);
  });
  p.rules.forEach((r, i) => {
    for (const [cls, spec] of Object.entries(r.actions)) {
      if (spec && typeof spec === 'object') {
        for (const g of spec.approve.groups) {
          if (!p.reviewers[g]) {
            ctx.addIssue({
              code: 'custom',
              path: ['rules', i, 'actions', cls, 'approve', 'groups'],
              message: `approver group ${g} has no entry in reviewers`,
            });
          }
        }
      }
    }
  });
});

type PolicyInput = z.infer<typeof policyShape>;

/**
 * Every name resolves to one issuer (its own or the policy's), and the reviewers directory is one to
 * one: a principal has one mailbox and a mailbox one principal, so that one person holds one vote.
 */
function checkNames(p: PolicyInput, ctx: z.RefinementCtx): void {
  const needsIssuer = (path: (string | number)[]): void => {
    if (p.issuer === undefined) ctx.addIssue({ code: 'custom', path, message: 'names no issuer and the policy has no top-level issuer' });
  };
  const checkSubjects = (s: { users: readonly UserName[] } | undefined, path: (string | number)[]): void =>
    s?.users.forEach((u, i) => (typeof u === 'string' || u.issuer === undefined) && needsIssuer([...path, 'subjects', 'users', i]));
  p.rules.forEach((r, i) => checkSubjects(r.subjects, ['rules', i]));
  p.blocks.forEach((b, i) => checkSubjects(b.subjects, ['blocks', i]));
  p.masks.forEach((m, i) => checkSubjects(m.subjects, ['masks', i]));
  const listed = new Set(Object.values(p.reviewers).flatMap((entries) => entries.map((r) => principalKey({ issuer: r.issuer ?? p.issuer ?? '', subject: r.subject }))));
  for (const [slackUser, who] of Object.entries(p.slack?.users ?? {})) {
    const named = typeof who === 'string' ? { subject: who, issuer: p.issuer } : { subject: who.subject, issuer: who.issuer ?? p.issuer };
    if (named.issuer === undefined) needsIssuer(['slack', 'users', slackUser]);
    else if (!listed.has(principalKey({ issuer: named.issuer, subject: named.subject }))) {
      ctx.addIssue({ code: 'custom', path: ['slack', 'users', slackUser], message: `subject ${named.subject} is not in reviewers` });
    }
  }
  const mailboxOf = new Map<string, string>();
  const principalOf = new Map<string, string>();
  for (const [group, entries] of Object.entries(p.reviewers)) {
    entries.forEach((r, i) => {
      const path = ['reviewers', group, i];
      if (r.issuer === undefined) needsIssuer(path);
      const principal = principalKey({ issuer: r.issuer ?? p.issuer ?? '', subject: r.subject });
      const mailbox = r.email.toLowerCase();
      if ((mailboxOf.get(principal) ?? mailbox) !== mailbox) ctx.addIssue({ code: 'custom', path, message: `subject ${r.subject} has two addresses in reviewers` });
      if ((principalOf.get(mailbox) ?? principal) !== principal) ctx.addIssue({ code: 'custom', path, message: `${r.email} belongs to two subjects in reviewers` });
      mailboxOf.set(principal, mailbox);
      principalOf.set(mailbox, principal);
    });
  }
}

export type PolicyDocument = z.infer<typeof policySchema>;
export type PolicyRule = PolicyDocument['rules'][number];
export type PolicyBlock = PolicyDocument['blocks'][number];
export type PolicyMask = PolicyDocument['masks'][number];
export type PolicyTarget = PolicyDocument['targets'][number];
export type RecordingSettings = PolicyDocument['recording'];
export type DecisionSpec = z.infer<typeof decisionSpec>;
export type BlockableStatement = (typeof BLOCKABLE_STATEMENTS)[number];

/** A stored policy: the validated document plus its version and the YAML it came from. */
export interface VersionedPolicy {
  readonly version: number;
  readonly document: PolicyDocument;
  readonly source: string;
}
