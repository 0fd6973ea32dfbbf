import type { Identity } from '../../core/identity/identity';
import type { Action, Decision } from '../../core/policy/decide';
import type { TargetConfig } from '../config';
import type { InProcessChannels } from '../sessions/channels';
import type { HeldExecutions } from './held-executions';

/** Where the agent's own listener for a target accepts the in-process connection (a protocol may add more). */
export interface ToolListenerAddress {
  readonly host: string;
  readonly port: number;
}

/** What every protocol's MCP toolset is given by the agent; a protocol that needs more extends it. */
export interface ToolsetDeps<Address extends ToolListenerAddress = ToolListenerAddress> {
  decide(identity: Identity, target: string, action: Action): Decision;
  /** The agent's own listener for a target; undefined when it is not listening. */
  addressOf(target: string): Address | undefined;
  readonly held: HeldExecutions;
  /** Where the in-process connections are registered as MCP's (the listener shows reviewers the channel, applies `mcpWrites` and learns of a hold). */
  readonly channels: InProcessChannels;
}

/**
 * A toolset's `available` when its tool does reads and writes alike: listed where the target's listener
 * runs and the policy lets the caller do anything through MCP (each request is still judged by the listener).
 */
export const listedForAnyUse =
  (deps: ToolsetDeps) =>
  (identity: Identity, t: TargetConfig): boolean =>
    deps.addressOf(t.name) !== undefined && (['read', 'write'] as const).some((cls) => deps.decide(identity, t.name, { class: cls, via: 'mcp' }).kind !== 'deny');
