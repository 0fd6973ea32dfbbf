import { z } from 'zod';
import type { Identity } from '../../core/identity/identity';
import type { Protocol } from '../../core/policy/schema';
import type { TargetConfig } from '../config';

/** What a toolset keeps for one MCP session (its connections), closed when the session ends. */
export interface SessionScope {
  get<T extends { close(): void }>(key: string, create: () => T): T;
}

/** What a tool call knows of its caller and where it goes. */
export interface ToolCall {
  readonly identity: Identity;
  /** The caller's verified bearer token: the in-process connection to a protocol listener presents it. */
  readonly token: string;
  readonly target: TargetConfig;
  /** The MCP client as its handshake named it (`name version`), for reviewers and recordings. */
  readonly client: string;
  readonly scope: SessionScope;
}

/**
 * A tool's answer. `decision` is what twokey decided (recorded); `result` goes to the model as JSON;
 * `summary` is what the recording keeps of it (masked, no rows). A refusal is `ok: false` with the
 * `twokey:` message the protocol's own clients see.
 */
export type ToolOutcome =
  | { readonly ok: true; readonly decision: 'allow' | 'approve'; readonly result: unknown; readonly summary: string }
  | { readonly ok: false; readonly decision: 'deny' | 'approve' | 'error'; readonly message: string };

export type Refusal = Extract<ToolOutcome, { ok: false }>;

/** A tool error the caller's agent can reason about: a `twokey:` message and how it was decided. */
/** What one tool call may take in all (waiting for a decision, running): below MCP clients' usual 60 s request timeout. */
export const MCP_CALL_BUDGET_SECONDS = 50;

export const refusal = (decision: Refusal['decision'], message: string): Refusal => ({ ok: false, decision, message });

/** The answer when the target's own listener is not up on this agent (no tool call goes anywhere else). */
export const notServed = (target: string): Refusal => refusal('error', `twokey: ${target} is not served by this agent right now`);

export interface McpTool<A extends z.ZodObject = z.ZodObject> {
  readonly name: string;
  readonly description: string;
  /** Arguments besides `target` (strict: unknown fields are refused). */
  readonly args: A;
  /** Whether the policy lets this caller use the tool on the target at all (it still decides each request). */
  available(identity: Identity, target: TargetConfig): boolean;
  call(args: z.infer<A>, call: ToolCall): Promise<ToolOutcome>;
}

/**
 * A tool with its argument type erased, for a toolset's list. Sound because the registry calls `call`
 * only with what `args` parsed.
 */
export const tool = <A extends z.ZodObject>(t: McpTool<A>): McpTool => t as unknown as McpTool;

/** One protocol's tools: a new data plane (SSH, Kubernetes) adds its module here and nothing else changes. */
export interface McpToolset {
  readonly protocol: Protocol;
  readonly tools: readonly McpTool[];
}

/** A tool as `tools/list` shows it to one caller: `target` is one of the targets where they may use it. */
export interface ListedTool {
  readonly name: string;
  readonly description: string;
  readonly inputSchema: { type: 'object'; properties?: Record<string, object>; required?: string[]; [k: string]: unknown };
}

/**
 * Every tool of every protocol this agent serves, listed per caller: a tool appears only with the
 * targets the policy lets them use it on, and a call is checked again against the current policy.
 */
export class ToolRegistry {
  private readonly byName = new Map<string, { tool: McpTool; protocol: Protocol; schema: { properties?: Record<string, object>; required?: string[] } }>();

  constructor(
    toolsets: readonly McpToolset[],
    private readonly targets: () => readonly TargetConfig[],
  ) {
    for (const set of toolsets) {
      for (const tool of set.tools) {
        if (this.byName.has(tool.name)) throw new Error(`MCP tool ${tool.name} is defined twice`);
        this.byName.set(tool.name, { tool, protocol: set.protocol, schema: z.toJSONSchema(tool.args) as { properties?: Record<string, object>; required?: string[] } });
      }
    }
  }

  /** The targets where this caller may use a tool (in the optional `only` subset of targets). */
  targetsFor(name: string, identity: Identity, only?: ReadonlySet<string>): TargetConfig[] {
    const entry = this.byName.get(name);
    if (!entry) return [];
    return this.targets().filter((t) => t.protocol === entry.protocol && (!only || only.has(t.name)) && entry.tool.available(identity, t));
  }

  /** Targets the caller may use any tool on, with those tools. */
  reachable(identity: Identity, only?: ReadonlySet<string>): { target: TargetConfig; tools: string[] }[] {
    const out = new Map<string, { target: TargetConfig; tools: string[] }>();
    for (const name of this.byName.keys()) {
      for (const target of this.targetsFor(name, identity, only)) {
        const entry = out.get(target.name) ?? { target, tools: [] };
        entry.tools.push(name);
        out.set(target.name, entry);
      }
    }
    return [...out.values()];
  }

  list(identity: Identity, only?: ReadonlySet<string>): ListedTool[] {
    const listed: ListedTool[] = [];
    for (const [name, { tool, schema }] of this.byName) {
      const targets = this.targetsFor(name, identity, only).map((t) => t.name);
      if (!targets.length) continue;
      listed.push({
        name,
        description: tool.description,
        inputSchema: {
          ...schema,
          type: 'object',
          properties: { target: { type: 'string', enum: targets, description: 'The target to run on' }, ...schema.properties },
          required: ['target', ...(schema.required ?? [])],
        },
      });
    }
    return listed;
  }

  /** Runs a call: an unknown tool, a target the caller may not use it on, or bad arguments are refused. */
  async call(name: string, rawArgs: unknown, caller: Omit<ToolCall, 'target'>, only?: ReadonlySet<string>): Promise<ToolOutcome & { target?: string }> {
    const entry = this.byName.get(name);
    if (!entry) return { ok: false, decision: 'error', message: `twokey: no tool ${name}` };
    const args = (rawArgs ?? {}) as Record<string, unknown>;
    const targetName = typeof args.target === 'string' ? args.target : undefined;
    const target = this.targetsFor(name, caller.identity, only).find((t) => t.name === targetName);
    if (!target) return { ok: false, decision: 'deny', message: `twokey: ${name} is not available to you on ${targetName === undefined ? 'that target' : `target ${targetName}`}` };
    const { target: _named, ...rest } = args;
    const parsed = entry.tool.args.safeParse(rest);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return { ok: false, decision: 'error', message: `twokey: invalid arguments: ${issue?.path.join('.') || '(arguments)'}: ${issue?.message ?? 'invalid'}`, target: target.name };
    }
    return { ...(await entry.tool.call(parsed.data, { ...caller, target })), target: target.name };
  }
}
