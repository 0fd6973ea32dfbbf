import { randomUUID } from 'node:crypto';
import type { Identity } from '../../core/identity/identity';
import type { AgentContext } from '../agent';
import type { TargetConfig } from '../config';
import { JsonSessionRecorder } from '../recording/session-recorder';
import { startSession, type StartedSession } from '../sessions/lifecycle';
import { sessionMaskingFor } from '../sessions/session-masking';
import type { SessionScope, ToolOutcome, ToolRegistry } from './tool-registry';

/** One tool call as the target's MCP recording keeps it: arguments masked like a statement, the result as a summary. */
export interface ToolCallEvent {
  readonly e: 'tool';
  readonly tool: string;
  readonly arguments: unknown;
  readonly decision: ToolOutcome['decision'];
  readonly ok: boolean;
  /** The result in a line (counts and columns, no rows), or the refusal's message. */
  readonly summary: string;
  readonly durationMs: number;
}

/**
 * One MCP session of one caller: its tool calls, each recorded in the recording of the target it
 * touched (one recording per target, as the control plane keeps recordings by target; admitted by
 * the agent's session registry, so strict recording and the per-target cap apply).
 */
export class McpSession {
  private readonly recorded = new Map<string, StartedSession<ToolCallEvent>>();
  private readonly kept = new Map<string, { close(): void }>();
  private ended = false;
  private readonly scope: SessionScope = {
    get: <T extends { close(): void }>(key: string, create: () => T): T => {
      const existing = this.kept.get(key) as T | undefined;
      if (existing) return existing;
      const made = create();
      this.kept.set(key, made);
      return made;
    },
  };

  constructor(
    private readonly context: AgentContext,
    private readonly registry: ToolRegistry,
    readonly identity: Identity,
    /** The targets this session is limited to (`/mcp?target=T`), or every target. */
    readonly only: ReadonlySet<string> | undefined,
    private readonly clientAddress: string,
    /** `name version` from the MCP handshake, once it happened. */
    private readonly client: () => string,
  ) {}

  listTargets(identity: Identity): { name: string; protocol: string; tools: string[] }[] {
    return this.registry.reachable(identity, this.only).map(({ target, tools }) => ({ name: target.name, protocol: target.protocol, tools }));
  }

  /** A tool call by this session's principal, as the current request's token proved them. */
  async call(name: string, args: unknown, identity: Identity, token: string): Promise<ToolOutcome> {
    const startedAt = Date.now();
    const targetName = (args as { target?: unknown } | undefined)?.target;
    const target = typeof targetName === 'string' ? this.registry.targetsFor(name, identity, this.only).find((t) => t.name === targetName) : undefined;
    const session = target && this.sessionFor(target);
    if (session && 'refused' in session) return { ok: false, decision: 'deny', message: session.refused };
    const outcome = await this.registry.call(name, args, { identity, token, client: this.client(), scope: this.scope }, this.only);
    session?.record({
      e: 'tool',
      tool: name,
      arguments: target ? sessionMaskingFor(this.context, identity, target.name).json(args) : undefined,
      decision: outcome.decision,
      ok: outcome.ok,
      summary: outcome.ok ? outcome.summary : outcome.message,
      durationMs: Date.now() - startedAt,
    });
    return outcome;
  }

  end(reason: string): void {
    this.ended = true;
    for (const k of this.kept.values()) k.close();
    this.kept.clear();
    for (const s of this.recorded.values()) s.end(reason);
    this.recorded.clear();
  }

  /** The recorded session of this MCP session on a target, started on its first call there. */
  private sessionFor(target: TargetConfig): StartedSession<ToolCallEvent> | { refused: string } {
    const existing = this.recorded.get(target.name);
    if (existing) return existing;
    if (this.ended) return { refused: 'twokey: this MCP session has ended' };
    const id = randomUUID();
    const recording = this.context.recordingSettings(target.name);
    const started = startSession<ToolCallEvent>(
      this.context.sessions,
      {
        id,
        target: target.name,
        protocol: target.protocol,
        identity: this.identity,
        // Ended from outside (strict recording, shutdown): the next call on the target starts anew, if admitted.
        close: (reason) => {
          const closed = this.recorded.get(target.name);
          this.recorded.delete(target.name);
          closed?.end(reason);
        },
        recorder: () =>
          recording.mode === 'off'
            ? undefined
            : new JsonSessionRecorder<ToolCallEvent>(this.context.recording, { sessionId: id, target: target.name, identity: this.identity, clientAddress: this.clientAddress, at: new Date(), protocol: 'mcp', details: { application: `MCP: ${this.client()}` } }),
      },
      this.context.log,
    );
    if (!started.ok) return { refused: started.refusal.message };
    this.recorded.set(target.name, started.session);
    return started.session;
  }
}
