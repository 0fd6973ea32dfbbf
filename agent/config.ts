import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { isLoopback } from './net/loopback';

const credential = z.strictObject({
  user: z.string().min(1),
  password: z.string().optional(),
  /** Name of an environment variable holding the password, so that it need not sit in the file. */
  passwordEnv: z.string().optional(),
});

const name = z.string().min(1).max(128);
const listen = z.strictObject({ host: z.string().default('127.0.0.1'), port: z.number().int().min(0).max(65535) });
const upstreamPort = z.number().int().min(1).max(65535);
/** A certificate and key (PEM files) the agent's listener presents to callers. */
const tlsFiles = z.strictObject({ certFile: z.string(), keyFile: z.string() });

/** A PostgreSQL database: callers' reads run on `readCredential`, approved writes on `writeCredential`. */
const postgresTarget = z.strictObject({
  name,
  protocol: z.literal('postgres'),
  listen,
  upstream: z.strictObject({ host: z.string(), port: upstreamPort, database: z.string().optional() }),
  readCredential: credential,
  writeCredential: credential,
  tls: tlsFiles.optional(),
});

/** An SSH login the agent uses upstream: a user and its private key. */
const sshLogin = z.strictObject({ user: z.string().min(1), keyFile: z.string() });

/** An SSH host: reads as `readLogin`, approved commands as `writeLogin`; the host key is pinned. */
const sshTarget = z.strictObject({
  name,
  protocol: z.literal('ssh'),
  listen,
  upstream: z.strictObject({ host: z.string(), port: upstreamPort.default(22) }),
  /** The upstream's host key fingerprint as `ssh-keygen -lf` prints it (`SHA256:` and 43 base64 characters): no other key is accepted. */
  hostKey: z.string().regex(/^SHA256:[A-Za-z0-9+/]{43}$/, 'a SHA256: host key fingerprint'),
  readLogin: sshLogin,
  writeLogin: sshLogin,
});

/** A service-account token, from a file (a projected token is rotated there) or an environment variable. */
const serviceAccountToken = z
  .strictObject({ tokenFile: z.string().optional(), tokenEnv: z.string().optional() })
  .refine((t) => (t.tokenFile === undefined) !== (t.tokenEnv === undefined), 'exactly one of tokenFile or tokenEnv');

/** A Kubernetes API server: reads with `readToken`, approved requests with `writeToken`. */
const kubernetesTarget = z.strictObject({
  name,
  protocol: z.literal('kubernetes'),
  listen,
  apiServer: z.string().regex(/^https:\/\//, 'an https:// URL'),
  /** The API server's CA (PEM); the system's CAs when absent. */
  caFile: z.string().optional(),
  readToken: serviceAccountToken,
  writeToken: serviceAccountToken,
  tls: tlsFiles.optional(),
});

/**
 * What a Postgres target must say beyond its fields, or undefined: it pins its database (callers do
 * not choose where approved writes go), and a listener other hosts can reach has TLS (the caller's
 * token is its password). Checked when the file is read and again when a listener starts.
 */
export function targetProblem(t: Pick<z.infer<typeof postgresTarget>, 'listen' | 'upstream' | 'tls'>): string | undefined {
  if (!t.upstream.database) return 'upstream.database is required: the agent serves one database per target';
  return listenerTlsProblem(t);
}

/** One target per protocol's shape: a field one protocol needs is not asked of the others. */
const target = z.discriminatedUnion('protocol', [postgresTarget, sshTarget, kubernetesTarget]).superRefine((t, ctx) => {
  const problem = t.protocol === 'postgres' ? targetProblem(t) : undefined;
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

/**
 * The agent's MCP endpoint (Streamable HTTP at `/mcp`) for AI agents, over every target this agent
 * serves. The caller's bearer token travels in each request: TLS unless it listens on loopback.
 */
const mcpEndpoint = z
  .strictObject({
    listen,
    /** A configured certificate, or `generated`: one the agent makes and keeps (MCP_GENERATED_TLS_DIR), for clients to pin. */
    tls: z.union([tlsFiles, z.literal('generated')]).optional(),
    /** The URL callers use (protected-resource metadata names it); `http(s)://listen.host:port` when absent. */
    publicUrl: z.string().url().optional(),
  })
  .superRefine((m, ctx) => {
    const problem = listenerTlsProblem(m);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
    // A generated certificate names the listen host and the public URL's: on a wildcard bind, only the latter reaches other hosts.
    const wildcard = m.listen.host === '0.0.0.0' || m.listen.host === '::';
    if (m.tls === 'generated' && wildcard && !m.publicUrl) ctx.addIssue({ code: 'custom', message: `tls: generated on ${m.listen.host} needs publicUrl: the host name clients use goes into the certificate` });
  });

/** A listener that takes callers' tokens must have TLS unless only this machine can reach it. */
export function listenerTlsProblem(l: { listen: { host: string }; tls?: unknown }): string | undefined {
  if (!l.tls && !isLoopback(l.listen.host)) return `listen.host ${l.listen.host} is reachable from other hosts: configure tls (certFile, keyFile), or listen on 127.0.0.1`;
  return undefined;
}

/** The agent key travels in the WebSocket handshake: only over TLS, or to this machine. */
export function controlPlaneUrlProblem(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'not a URL';
  }
  if (parsed.protocol === 'wss:') return undefined;
  if (parsed.protocol === 'ws:') return isLoopback(parsed.hostname) ? undefined : 'ws:// sends the agent key in clear: use wss:// (ws:// only to 127.0.0.1 or localhost)';
  return 'a ws:// or wss:// URL';
}

export const agentConfigSchema = z.strictObject({
  name: z.string().min(1).max(63),
  controlPlane: z.strictObject({
    url: z.string().superRefine((url, ctx) => {
      const problem = controlPlaneUrlProblem(url);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }),
    keyFile: z.string().optional(),
    keyEnv: z.string().default('TWOKEY_AGENT_KEY'),
  }),
  stateDir: z.string(),
  identity: z.strictObject({
    // `audience` is the data plane's; `refusedAudiences` names the control plane API's, so an admin token is no psql password.
    issuers: z
      .array(z.strictObject({ issuer: z.string().url(), audience: z.string(), refusedAudiences: z.array(z.string().min(1)).optional(), groupsClaim: z.string().optional() }))
      .min(1),
  }),
  targets: z.array(target).default([]),
  recording: z.strictObject({ spoolCapBytes: z.number().int().min(1).optional() }).optional(),
  mcp: mcpEndpoint.optional(),
});

export type AgentConfig = z.infer<typeof agentConfigSchema>;
export type TargetConfig = AgentConfig['targets'][number];
export type PostgresTargetConfig = Extract<TargetConfig, { protocol: 'postgres' }>;
export type SshTargetConfig = Extract<TargetConfig, { protocol: 'ssh' }>;
export type KubernetesTargetConfig = Extract<TargetConfig, { protocol: 'kubernetes' }>;
export type CredentialConfig = z.infer<typeof credential>;
export type McpEndpointConfig = z.infer<typeof mcpEndpoint>;
/** In the agent's state directory: where its MCP endpoint bound (`{ "endpoint": "host:port" }`). */
export const MCP_ENDPOINT_FILE = 'mcp.json';
/** In the agent's state directory: the MCP endpoint's generated certificate (`cert.pem`, its own CA) and key. */
export const MCP_GENERATED_TLS_DIR = 'mcp';

export class AgentConfigError extends Error {
  override name = 'AgentConfigError';
}

/** The target as a Postgres target; a config error for another protocol's. */
export function asPostgresTarget(t: TargetConfig): PostgresTargetConfig {
  if (t.protocol !== 'postgres') throw new AgentConfigError(`target ${t.name}: a ${t.protocol} target is not a Postgres target`);
  return t;
}

/** The database a Postgres target serves; a config error when the target does not pin one. */
export function pinnedDatabase(t: PostgresTargetConfig): string {
  const problem = targetProblem(t);
  if (problem || !t.upstream.database) throw new AgentConfigError(`target ${t.name}: ${problem ?? 'upstream.database is required'}`);
  return t.upstream.database;
}

/** Loads an agent config file; relative paths inside it are relative to the file. */
export async function loadAgentConfig(file: string): Promise<AgentConfig> {
  const text = await readFile(file, 'utf8');
  const parsed = agentConfigSchema.safeParse(parseYaml(text));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new AgentConfigError(`${file}: ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`);
  }
  const base = dirname(resolve(file));
  const config = parsed.data;
  return {
    ...config,
    stateDir: resolve(base, config.stateDir),
    controlPlane: { ...config.controlPlane, keyFile: config.controlPlane.keyFile && resolve(base, config.controlPlane.keyFile) },
    targets: config.targets.map((t) => withPathsFrom(base, t)),
    mcp: config.mcp && { ...config.mcp, tls: typeof config.mcp.tls === 'object' ? { certFile: resolve(base, config.mcp.tls.certFile), keyFile: resolve(base, config.mcp.tls.keyFile) } : config.mcp.tls },
  };
}

/** A target with the files it names resolved against `base` (the config file's directory). */
function withPathsFrom(base: string, t: TargetConfig): TargetConfig {
  const file = (f: string): string => resolve(base, f);
  const tls = (f: { certFile: string; keyFile: string } | undefined) => f && { certFile: file(f.certFile), keyFile: file(f.keyFile) };
  switch (t.protocol) {
    case 'postgres':
      return { ...t, tls: tls(t.tls) };
    case 'ssh':
      return { ...t, readLogin: { ...t.readLogin, keyFile: file(t.readLogin.keyFile) }, writeLogin: { ...t.writeLogin, keyFile: file(t.writeLogin.keyFile) } };
    case 'kubernetes': {
      const token = (k: typeof t.readToken) => ({ ...k, tokenFile: k.tokenFile && file(k.tokenFile) });
      return { ...t, caFile: t.caFile && file(t.caFile), readToken: token(t.readToken), writeToken: token(t.writeToken), tls: tls(t.tls) };
    }
  }
}

export function passwordOf(c: CredentialConfig): string | undefined {
  return c.passwordEnv ? process.env[c.passwordEnv] : c.password;
}

export async function agentKeyOf(config: AgentConfig): Promise<string> {
  const fromEnv = process.env[config.controlPlane.keyEnv];
  if (fromEnv) return fromEnv.trim();
  if (config.controlPlane.keyFile) return (await readFile(config.controlPlane.keyFile, 'utf8')).trim();
  throw new AgentConfigError(`no agent key: set ${config.controlPlane.keyEnv} or controlPlane.keyFile`);
}
