import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAgent, type RunningAgent } from '../../agent/agent';
import type { AgentConfig, KubernetesTargetConfig } from '../../agent/config';
import { startKubernetesListener } from '../../agent/kubernetes/listener';
import { startAgentMcp } from '../../agent/mcp/agent-endpoint';
import { agentMcpUrl } from './mcp-client';
import { generatedTlsDir } from '../../agent/kubernetes/tls';
import type { LocalControlPlane } from '../../local/control-plane';
import { devIssuerConfig, withDevIssuer } from '../../local/oidc/dev-issuer';
import { api, startTestControlPlane, tokenFor, waitFor } from './control-plane';
import { KUBECTL } from './kubectl';

/**
 * The Kubernetes tests' policy: support reads, and needs an ops approval for writes and for exec,
 * attach and port-forward (their output masked by the email detector); viewers only read.
 */
export const KUBE_TEST_POLICY = `
targets:
  - { name: k8s, protocol: kubernetes, agent: kube-agent }
reviewers: { ops: [{ subject: bob, email: bob@example.com }] }
rules:
  - name: support
    targets: [k8s]
    subjects: { groups: [support] }
    actions: { read: allow, write: { approve: { groups: [ops], timeoutSeconds: 600 } }, admin: { approve: { groups: [ops] } }, unknown: deny }
  - name: viewers
    targets: [k8s]
    subjects: { groups: [viewer] }
    actions: { read: allow, write: deny, admin: deny, unknown: deny }
masks:
  - { name: support-detectors, targets: [k8s], subjects: { groups: [support] }, columns: [], detectors: [email] }
`;

/** The API server the agent proxies: its URL, CA and the two service-account tokens it knows. */
export interface KubeUpstreamForTest {
  readonly url: string;
  readonly caPem: string;
  readonly readToken: string;
  readonly writeToken: string;
}

export interface KubeStack {
  readonly cp: LocalControlPlane;
  readonly agent: RunningAgent;
  readonly stateDir: string;
  /** The control plane's data directory (holds the dev issuer's key, so `twokey token --user` works with --data-dir). */
  readonly dataDir: string;
  /** https://127.0.0.1:port of the target's listener. */
  server(target: string): string;
  /** The listener's CA (the certificate the agent made for the target). */
  caFile(target: string): string;
  /** A data-plane token; `ttlSeconds` negative for one that has expired. */
  token(user: string, groups: string[], ttlSeconds?: number): Promise<string>;
  /** The agent's MCP URL (with `mcp: true`). */
  mcpUrl(): string;
  stop(): Promise<void>;
}

/** Control plane, policy and an agent serving Kubernetes targets in front of `upstream`. */
export async function startKubeStack(options: { policy: string; targets: readonly string[]; upstream: KubeUpstreamForTest; mcp?: boolean }): Promise<KubeStack> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tk-kube-cp-'));
  const cp = await startTestControlPlane(dataDir);
  writeFileSync(join(dataDir, 'dev.json'), JSON.stringify({ controlPlane: { httpUrl: cp.httpUrl, wsUrl: cp.wsUrl }, issuer: cp.issuer, outboxDir: cp.outboxDir, targets: {}, pid: process.pid }));
  const root = await tokenFor(cp, 'root', ['admin']);
  await api(cp, root, 'PUT', '/policies', withDevIssuer(options.policy, cp.issuer), { 'if-match': '"0"' });
  process.env.KUBE_AGENT_KEY = (await api(cp, root, 'POST', '/agents', JSON.stringify({ name: 'kube-agent' }))).body.key as string;
  process.env.KUBE_READ_TOKEN = options.upstream.readToken;
  process.env.KUBE_WRITE_TOKEN = options.upstream.writeToken;
  const stateDir = mkdtempSync(join(tmpdir(), 'tk-kube-agent-'));
  const caFile = join(stateDir, 'upstream-ca.pem');
  writeFileSync(caFile, options.upstream.caPem);
  const targets: KubernetesTargetConfig[] = options.targets.map((name) => ({
    name,
    protocol: 'kubernetes',
    listen: { host: '127.0.0.1', port: 0 },
    apiServer: options.upstream.url,
    caFile,
    readToken: { tokenEnv: 'KUBE_READ_TOKEN' },
    writeToken: { tokenEnv: 'KUBE_WRITE_TOKEN' },
  }));
  const config: AgentConfig = { name: 'kube-agent', controlPlane: { url: cp.wsUrl, keyEnv: 'KUBE_AGENT_KEY' }, stateDir, identity: { issuers: [devIssuerConfig(cp.issuer, 'data')] }, targets, mcp: options.mcp ? { listen: { host: '127.0.0.1', port: 0 } } : undefined };
  const lines: string[] = [];
  const keep = (level: string) => (event: string, fields?: Record<string, unknown>) => void lines.push(`${level} ${event} ${JSON.stringify(fields ?? {})}`);
  const agent = await startAgent(config, { listenerFactories: { kubernetes: (t, ctx) => startKubernetesListener(t, ctx) }, mcpEndpoint: startAgentMcp, log: { info: keep('info'), warn: keep('warn'), error: keep('error') } });
  await waitFor(() => agent.policy.policy, 30_000, 'policy').catch((e: unknown) => {
    throw new Error(`${String(e)}; agent log:\n${lines.join('\n')}`);
  });
  const listener = (target: string) => {
    const l = agent.listeners.find((x) => x.target === target);
    if (!l) throw new Error(`no listener for ${target}`);
    return l;
  };
  return {
    cp,
    agent,
    stateDir,
    dataDir,
    server: (target) => `https://${listener(target).endpoint}`,
    caFile: (target) => join(generatedTlsDir(stateDir, target), 'cert.pem'),
    token: (user, groups, ttlSeconds) => tokenFor(cp, user, groups, { audience: 'data', ttlSeconds }),
    mcpUrl: () => agentMcpUrl(agent),
    async stop() {
      await agent.stop();
      await cp.stop();
      rmSync(stateDir, { recursive: true, force: true });
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface KubectlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the real kubectl against a target's listener with a bearer token (no kubeconfig of the user's is read; its cache is the stack's). */
export function kubectl(stack: KubeStack, target: string, token: string, args: readonly string[], options: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<KubectlResult> {
  const flags = [`--server=${stack.server(target)}`, `--certificate-authority=${stack.caFile(target)}`, `--token=${token}`];
  return runKubectl([...flags, ...args], { KUBECONFIG: '/dev/null', HOME: stack.dataDir, ...options.env }, options);
}

export function runKubectl(args: readonly string[], env: NodeJS.ProcessEnv, options: { input?: string; timeoutMs?: number } = {}): Promise<KubectlResult> {
  return new Promise((resolve) => {
    const child = execFile(KUBECTL, [...args], { env: { ...process.env, ...env }, timeout: options.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** A kubectl that keeps running (`-w`, `logs -f`): its output so far, a wait for a pattern in it, and a stop. */
export interface StreamingKubectl {
  readonly stdout: () => string;
  readonly stderr: () => string;
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export function streamKubectl(stack: KubeStack, target: string, token: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): StreamingKubectl {
  const flags = [`--server=${stack.server(target)}`, `--certificate-authority=${stack.caFile(target)}`, `--token=${token}`];
  const child = spawn(KUBECTL, [...flags, ...args], { env: { ...process.env, KUBECONFIG: '/dev/null', HOME: stack.dataDir, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    stdout: () => out,
    stderr: () => err,
    waitFor: (pattern, timeoutMs = 20_000) => waitFor(() => pattern.test(out) || undefined, timeoutMs, `kubectl output matching ${String(pattern)} (got: ${out.slice(-500)} ${err.slice(-500)})`).then(() => undefined),
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** One raw HTTPS request to a target's listener (the listener's certificate trusted), its whole answer read. */
export function agentRequest(stack: KubeStack, target: string, method: string, path: string, headers: Record<string, string>, body?: Buffer | string): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  const url = new URL(stack.server(target));
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ hostname: url.hostname, port: url.port, method, path, headers, ca: readFileSync(stack.caFile(target)) }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString('utf8')));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      res.once('error', reject);
    });
    req.once('error', reject);
    req.end(body);
  });
}
