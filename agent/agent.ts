import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Identity } from '../core/identity/identity';
import { TokenVerifier } from '../core/identity/verifier';
import { jsonLogger, type Logger } from '../core/log';
import { decide, masksFor, recordingFor, type Action, type Decision } from '../core/policy/decide';
import { SSH_KEYS_UNAVAILABLE, TUNNEL_PROTOCOL_VERSION } from '../core/tunnel/messages';
import { DEFAULT_RECORDING, type PolicyMask, type RecordingSettings } from '../core/policy/schema';
import type { Result } from '../core/result';
import type { TokenRejectedError } from '../core/identity/verifier';
import { fetchJson } from '../core/identity/fetch-json';
import { AgentConfigError, agentKeyOf, controlPlaneUrlProblem, MCP_ENDPOINT_FILE, type AgentConfig, type TargetConfig } from './config';
import { ApprovalClient } from './approvals/approval-client';
import { RecordingService } from './recording/recording-service';
import { PolicyCache } from './policy/policy-cache';
import { SessionRegistry } from './sessions/registry';
import { InProcessChannels } from './sessions/channels';
import { enforceStrictRecording } from './sessions/strict-recording';
import { TunnelClient } from './tunnel/tunnel-client';
import { RegisteredKeys } from './ssh/registered-keys';

export const AGENT_VERSION = '0.1.0';
const POLICY_RETRY_MS = 3_000;

/** What a protocol listener gets from the agent: who the caller is and what the policy says. */
export interface AgentContext {
  readonly name: string;
  readonly log: Logger;
  /** The agent's state directory (a protocol keeps what must survive restarts there, e.g. SSH host keys). */
  readonly stateDir: string;
  verifyToken(token: string): Promise<Result<Identity, TokenRejectedError>>;
  /** Fails closed: without a policy every action is denied. */
  decide(identity: Identity, target: string, action: Action): Decision;
  readonly tunnel: TunnelClient;
  readonly approvals: ApprovalClient;
  readonly recording: RecordingService;
  /** Every authenticated session of every protocol (strict recording is enforced on it). */
  readonly sessions: SessionRegistry;
  /** Connections the agent opens to its own listeners for a caller (MCP), so that a listener knows the channel. */
  readonly channels: InProcessChannels;
  /** The mask rules for a subject on a target (none without a policy: nothing is readable then anyway). */
  masks(identity: Identity, target: string): readonly PolicyMask[];
  /** The deployment's key for `hash` masks, once the control plane has sent it. */
  maskingKey(): Buffer | undefined;
  /** How the current policy records a target's sessions (the defaults until a policy arrives). */
  recordingSettings(target: string): RecordingSettings;
  /** SSH public keys callers registered through the control plane (empty until it has sent them). */
  readonly registeredKeys: RegisteredKeys;
}

export interface ProtocolListener {
  readonly target: string;
  /** host:port the listener actually bound. */
  readonly endpoint: string;
  stop(): Promise<void>;
}

/** The listener each protocol's targets are served by; each gets its own protocol's target config. */
export type ListenerFactories = { readonly [P in TargetConfig['protocol']]?: (target: Extract<TargetConfig, { protocol: P }>, context: AgentContext) => Promise<ProtocolListener> };

/** An endpoint over all of the agent's targets (MCP), started after the targets' listeners. */
export interface AgentEndpoint {
  /** host:port it bound. */
  readonly endpoint: string;
  stop(): Promise<void>;
}

/** Starts the MCP endpoint the config asks for, given the targets' listeners. */
export type McpEndpointFactory<E extends AgentEndpoint = AgentEndpoint> = (mcp: NonNullable<AgentConfig['mcp']>, context: AgentContext, served: { config: AgentConfig; listeners: readonly ProtocolListener[] }) => Promise<E>;

export interface RunningAgent {
  readonly context: AgentContext;
  readonly policy: PolicyCache;
  readonly tunnel: TunnelClient;
  readonly listeners: readonly ProtocolListener[];
  /** The MCP endpoint, when the config has an `mcp` section and this build serves MCP. */
  readonly mcp: AgentEndpoint | undefined;
  stop(): Promise<void>;
}

export interface AgentOptions {
  readonly listenerFactories?: ListenerFactories;
  readonly mcpEndpoint?: McpEndpointFactory;
  readonly heartbeatIntervalMs?: number;
  readonly log?: Logger;
}

export async function startAgent(config: AgentConfig, options: AgentOptions = {}): Promise<RunningAgent> {
  const log = options.log ?? jsonLogger(`agent:${config.name}`);
  const urlProblem = controlPlaneUrlProblem(config.controlPlane.url);
  if (urlProblem) throw new AgentConfigError(`controlPlane.url: ${urlProblem}`);
  const policy = new PolicyCache(config.stateDir);
  /** From the control plane's hello.ok; until it arrives, `hash` masks are shown as full masks. */
  let maskingKey: Buffer | undefined;
  const registeredKeys = new RegisteredKeys(config.identity.issuers.map((i) => i.issuer));
  if (await policy.load()) log.info('policy.loaded-from-disk', { version: policy.policy?.version });
  const verifier = new TokenVerifier(config.identity.issuers, { fetchJson, nowMs: Date.now });
  const tunnel = new TunnelClient({
    url: config.controlPlane.url,
    key: await agentKeyOf(config),
    agentVersion: AGENT_VERSION,
    targets: () => config.targets.map((t) => t.name),
    policyVersion: () => policy.policy?.version,
    heartbeatIntervalMs: options.heartbeatIntervalMs,
    log,
  });
  tunnel.onMessage(async (message) => {
    switch (message.type) {
      case 'policy': {
        const applied = await policy.apply(message.version, message.document);
        if (!applied.ok) log.error('policy.rejected', { version: message.version, reason: applied.error.message });
        else log.info('policy.applied', { version: message.version, result: applied.value });
        return;
      }
      case 'hello.ok':
        if (message.maskingKey) maskingKey = Buffer.from(message.maskingKey, 'base64');
        for (const r of message.rejected) log.warn('target.rejected', { target: r.target, reason: r.reason });
        // The policy follows hello.ok; if it got lost, ask again rather than wait for a heartbeat.
        setTimeout(() => {
          if (!policy.policy && tunnel.connected) tunnel.send({ type: 'policy.get', v: TUNNEL_PROTOCOL_VERSION });
        }, POLICY_RETRY_MS).unref();
        return;
      case 'ssh.keys': {
        const outcome = registeredKeys.apply(message);
        if (outcome === 'applied') log.info('ssh-keys.applied', { keys: registeredKeys.size });
        else if (outcome !== 'partial') log.warn('ssh-keys.ignored', { outcome, part: message.part, parts: message.parts });
        return;
      }
      case 'error':
        log.warn('control-plane.error', { code: message.code, message: message.message });
        if (message.code === SSH_KEYS_UNAVAILABLE) registeredKeys.clear();
        return;
      case 'heartbeat.ok':
        if (message.policyVersion !== undefined && message.policyVersion > (policy.policy?.version ?? 0)) {
          log.warn('policy.behind', { have: policy.policy?.version, current: message.policyVersion });
          tunnel.send({ type: 'policy.get', v: TUNNEL_PROTOCOL_VERSION });
        }
        if (message.sshKeysChangedAt !== undefined && message.sshKeysChangedAt > registeredKeys.asOfMs) {
          tunnel.send({ type: 'ssh.keys.get', v: TUNNEL_PROTOCOL_VERSION });
        }
        return;
    }
  });

  const context: AgentContext = {
    name: config.name,
    log,
    stateDir: config.stateDir,
    verifyToken: (token) => verifier.verify(token),
    decide(identity, target, action) {
      const current = policy.policy;
      if (!current) return { kind: 'deny', rule: undefined, reason: 'the agent has no policy yet' };
      return decide(identity, target, action, current.document);
    },
    tunnel,
    approvals: new ApprovalClient(tunnel, log),
    recording: new RecordingService(join(config.stateDir, 'spool'), tunnel, log, config.recording?.spoolCapBytes),
    sessions: new SessionRegistry(),
    channels: new InProcessChannels(),
    masks(identity, target) {
      const current = policy.policy;
      return current ? masksFor(identity, target, current.document) : [];
    },
    maskingKey: () => maskingKey,
    recordingSettings(target) {
      const current = policy.policy;
      return current ? recordingFor(current.document, target) : DEFAULT_RECORDING;
    },
    registeredKeys,
  };

  enforceStrictRecording(context.sessions, context.recording, (target) => context.recordingSettings(target));

  const listeners: ProtocolListener[] = [];
  let mcp: AgentEndpoint | undefined;
  try {
    for (const target of config.targets) {
      const listener = await startListener(options.listenerFactories ?? {}, target, context);
      if (!listener) {
        log.warn('target.unsupported', { target: target.name, protocol: target.protocol });
        continue;
      }
      listeners.push(listener);
      log.info('target.listening', { target: target.name, endpoint: listener.endpoint });
    }
    if (config.mcp && !options.mcpEndpoint) log.warn('mcp.unsupported', {});
    if (config.mcp && options.mcpEndpoint) {
      mcp = await options.mcpEndpoint(config.mcp, context, { config, listeners });
      log.info('mcp.listening', { endpoint: mcp.endpoint });
    }
  } catch (e) {
    await Promise.all(listeners.map((l) => l.stop()));
    throw e;
  }
  await writeEndpoints(config.stateDir, listeners, mcp);
  tunnel.start();
  context.recording.start();

  return {
    context,
    policy,
    tunnel,
    listeners,
    mcp,
    async stop() {
      context.sessions.closeAll('the agent is stopping');
      await mcp?.stop();
      await Promise.all(listeners.map((l) => l.stop()));
      context.recording.stop();
      await tunnel.stop();
    },
  };
}

/** The target's listener, from its protocol's factory; undefined when this build serves no such protocol. */
function startListener(factories: ListenerFactories, target: TargetConfig, context: AgentContext): Promise<ProtocolListener> | undefined {
  switch (target.protocol) {
    case 'postgres':
      return factories.postgres?.(target, context);
    case 'ssh':
      return factories.ssh?.(target, context);
    case 'kubernetes':
      return factories.kubernetes?.(target, context);
  }
}

/**
 * `stateDir/endpoints.json`: where each target's listener actually bound (tools and `twokey dev` read
 * it); before it, `stateDir/mcp.json` with the MCP endpoint's, when there is one.
 */
async function writeEndpoints(stateDir: string, listeners: readonly ProtocolListener[], mcp: AgentEndpoint | undefined): Promise<void> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const write = async (name: string, content: unknown): Promise<void> => {
    const file = join(stateDir, name);
    await writeFile(`${file}.tmp`, JSON.stringify(content), { mode: 0o600 });
    await rename(`${file}.tmp`, file);
  };
  if (mcp) await write(MCP_ENDPOINT_FILE, { endpoint: mcp.endpoint });
  await write('endpoints.json', Object.fromEntries(listeners.map((l) => [l.target, l.endpoint])));
}
