import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startAgent, type RunningAgent } from '../../agent/agent';
import type { AgentConfig, PostgresTargetConfig, TargetConfig } from '../../agent/config';
import { startPostgresListener } from '../../agent/postgres/listener';
import { startAgentMcp } from '../../agent/mcp/agent-endpoint';
import { agentMcpUrl } from './mcp-client';
import type { ControlPlaneOptions, LocalControlPlane } from '../../local/control-plane';
import { withDevIssuer, type TokenRequest } from '../../local/oidc/dev-issuer';
import { api, startTestControlPlane, tokenFor, waitFor } from './control-plane';
import { startTestPostgres, type TestPostgres } from './postgres';

export const PG_TEST_POLICY = `
targets:
  - { name: test-pg, protocol: postgres, agent: pg-agent }
  - { name: test-pg-rw, protocol: postgres, agent: pg-agent }
  - { name: test-pg-tls, protocol: postgres, agent: pg-agent }
reviewers: { dba: [{ subject: bob, email: bob@example.com }] }
rules:
  - name: support
    targets: [test-pg, test-pg-tls]
    subjects: { groups: [support] }
    actions: { read: allow, write: { approve: { groups: [dba] } }, ddl: deny, admin: deny, unknown: deny }
  - name: analysts
    targets: [test-pg]
    subjects: { groups: [analyst] }
    actions: { read: allow, write: deny }
  - name: loader
    targets: [test-pg-rw]
    subjects: { users: [loader] }
    actions: { read: allow, write: allow }
blocks:
  - { name: no-destructive, targets: ['*'], statements: [drop, truncate, delete-without-where, update-without-where] }
  - { name: no-kill, targets: ['*'], functions: ['pg_catalog.pg_terminate_backend'] }
`;

/** Where the agent's listener for a target bound. */
export function listenerEndpoint(agent: RunningAgent, target: string): { host: string; port: number } {
  const l = agent.listeners.find((x) => x.target === target);
  if (!l) throw new Error(`no listener for ${target}`);
  const [host, port] = l.endpoint.split(':');
  return { host: host ?? '127.0.0.1', port: Number(port) };
}

export interface PgStack {
  cp: LocalControlPlane;
  /** Stops the control plane and starts it again on the same port with the same on-disk state. */
  restartControlPlane(): Promise<void>;
  readonly pg: TestPostgres;
  readonly agent: RunningAgent;
  endpoint(target: string): { host: string; port: number };
  /** The agent's MCP URL (with `mcp: true`). */
  mcpUrl(): string;
  /** A data-plane token (a psql password). */
  token(user: string, groups: string[], claims?: Partial<TokenRequest>): Promise<string>;
  /** A token for the control plane's HTTP API. */
  apiToken(user: string, groups: string[], claims?: Partial<TokenRequest>): Promise<string>;
  stop(): Promise<void>;
}

/** A target on the test server's demo database, listening on loopback, with the demo roles; `extra` overrides. */
export function pgTarget(server: TestPostgres, name: string, extra: Partial<PostgresTargetConfig> = {}): PostgresTargetConfig {
  return {
    name,
    protocol: 'postgres',
    listen: { host: '127.0.0.1', port: 0 },
    upstream: { host: '127.0.0.1', port: server.port, database: 'demo' },
    readCredential: server.read,
    writeCredential: server.write,
    ...extra,
  };
}

/** Extra targets need extra database roles; `prepare` runs as the superuser before the agent starts. */
export async function startPgStack(
  options: {
    extraTargets?: (pg: TestPostgres) => TargetConfig[];
    prepare?: (admin: pg.Client) => Promise<void>;
    policy?: string;
    controlPlaneDir?: string;
    spoolCapBytes?: number;
    slack?: ControlPlaneOptions['slack'];
    reviewerOidc?: ControlPlaneOptions['reviewerOidc'];
    /** The control plane's HTTP port (0: any), for an IdP that must know its redirect URI first. */
    httpPort?: number;
    samlIdp?: ControlPlaneOptions['samlIdp'];
    kmsTokenKey?: ControlPlaneOptions['kmsTokenKey'];
    /** Issuers the agent trusts besides those registration lists. */
    extraIssuers?: AgentConfig['identity']['issuers'];
    /** Serve the agent's MCP endpoint too (on loopback). */
    mcp?: boolean;
    /** The MCP endpoint's TLS and public URL (with `mcp`). */
    mcpOptions?: Pick<NonNullable<AgentConfig['mcp']>, 'tls' | 'publicUrl'>;
  } = {},
): Promise<PgStack> {
  const pgServer = await startTestPostgres();
  const admin = new pg.Client({ connectionString: pgServer.adminUrl });
  await admin.connect();
  await options.prepare?.(admin);
  await admin.end();
  const cp = await startTestControlPlane(options.controlPlaneDir, options.httpPort ?? 0, true, { slack: options.slack, reviewerOidc: options.reviewerOidc, samlIdp: options.samlIdp, kmsTokenKey: options.kmsTokenKey });
  const root = await tokenFor(cp, 'root', ['admin']);
  await api(cp, root, 'PUT', '/policies', withDevIssuer(options.policy ?? PG_TEST_POLICY, cp.issuer), { 'if-match': '"0"' });
  const registered = (await api(cp, root, 'POST', '/agents', JSON.stringify({ name: 'pg-agent' }))).body as { key: string; setup: { issuers: AgentConfig['identity']['issuers'] } };
  const key = registered.key;
  process.env.PG_AGENT_KEY = key;
  const base = pgTarget(pgServer, 'test-pg');
  const stateDir = mkdtempSync(join(tmpdir(), 'tk-pg-agent-'));
  const config: AgentConfig = {
    name: 'pg-agent',
    controlPlane: { url: cp.wsUrl, keyEnv: 'PG_AGENT_KEY' },
    stateDir,
    // The issuers registration lists (the dev issuer, the control plane's own), as `twokey agents register -o` writes them.
    identity: { issuers: [...registered.setup.issuers, ...(options.extraIssuers ?? [])] },
    targets: [base, ...(options.extraTargets?.(pgServer) ?? [])],
    recording: options.spoolCapBytes ? { spoolCapBytes: options.spoolCapBytes } : undefined,
    mcp: options.mcp ? { listen: { host: '127.0.0.1', port: 0 }, ...options.mcpOptions } : undefined,
  };
  // Kept, not printed: shown only if the agent fails to get its policy.
  const lines: string[] = [];
  const keep = (level: string) => (event: string, fields?: Record<string, unknown>) => void lines.push(`${level} ${event} ${JSON.stringify(fields ?? {})}`);
  const quiet = { info: keep('info'), warn: keep('warn'), error: keep('error') };
  const agent = await startAgent(config, { listenerFactories: { postgres: (t, ctx) => startPostgresListener(t, ctx) }, mcpEndpoint: startAgentMcp, log: quiet });
  await waitFor(() => agent.policy.policy, 30_000, 'policy').catch((e: unknown) => {
    throw new Error(`${String(e)}; agent log:\n${lines.join('\n')}`);
  });
  const stack: PgStack = {
    cp,
    async restartControlPlane() {
      const port = Number(new URL(stack.cp.httpUrl).port);
      await stack.cp.stop();
      stack.cp = await startTestControlPlane(options.controlPlaneDir, port, true, { slack: options.slack, reviewerOidc: options.reviewerOidc });
    },
    pg: pgServer,
    agent,
    endpoint: (target) => listenerEndpoint(agent, target),
    mcpUrl: () => agentMcpUrl(agent),
    token: (user, groups, claims) => tokenFor(stack.cp, user, groups, { ...claims, audience: 'data' }),
    apiToken: (user, groups, claims) => tokenFor(stack.cp, user, groups, claims),
    async stop() {
      await agent.stop();
      await stack.cp.stop();
      await pgServer.stop();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
  return stack;
}
