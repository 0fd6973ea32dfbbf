import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { PROTOCOLS } from '../core/policy/schema';
import { isLoopback } from './net/loopback';

const credential = z.strictObject({
  user: z.string().min(1),
  password: z.string().optional(),
  /** Name of an environment variable holding the password, so that it need not sit in the file. */
  passwordEnv: z.string().optional(),
});

const targetFields = z.strictObject({
  name: z.string().min(1).max(128),
  protocol: z.enum(PROTOCOLS),
  listen: z.strictObject({ host: z.string().default('127.0.0.1'), port: z.number().int().min(0).max(65535) }),
  upstream: z.strictObject({ host: z.string(), port: z.number().int().min(1).max(65535), database: z.string().optional() }),
  readCredential: credential,
  writeCredential: credential,
  tls: z.strictObject({ certFile: z.string(), keyFile: z.string() }).optional(),
});

/**
 * What a target must say beyond its fields, or undefined: a Postgres target pins its database (callers
 * do not choose where approved writes go), and a listener other hosts can reach has TLS (the caller's
 * token is its password). Checked when the file is read and again when a listener starts.
 */
export function targetProblem(t: Pick<z.infer<typeof targetFields>, 'protocol' | 'listen' | 'upstream' | 'tls'>): string | undefined {
  if (t.protocol === 'postgres' && !t.upstream.database) return 'upstream.database is required: the agent serves one database per target';
  if (t.protocol === 'postgres' && !t.tls && !isLoopback(t.listen.host)) return `listen.host ${t.listen.host} is reachable from other hosts: configure tls (certFile, keyFile), or listen on 127.0.0.1`;
  return undefined;
}

const target = targetFields.superRefine((t, ctx) => {
  const problem = targetProblem(t);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

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
});

export type AgentConfig = z.infer<typeof agentConfigSchema>;
export type TargetConfig = AgentConfig['targets'][number];
export type CredentialConfig = z.infer<typeof credential>;

export class AgentConfigError extends Error {
  override name = 'AgentConfigError';
}

/** The database a Postgres target serves; a config error when the target does not pin one. */
export function pinnedDatabase(t: TargetConfig): string {
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
    targets: config.targets.map((t) => ({ ...t, tls: t.tls && { certFile: resolve(base, t.tls.certFile), keyFile: resolve(base, t.tls.keyFile) } })),
  };
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
