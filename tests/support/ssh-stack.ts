import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAgent, type RunningAgent } from '../../agent/agent';
import type { SshTargetConfig } from '../../agent/config';
import { readHostPublicKeyLine } from '../../agent/ssh/host-key';
import { startSshListener } from '../../agent/ssh/listener';
import { startAgentMcp } from '../../agent/mcp/agent-endpoint';
import { agentMcpUrl } from './mcp-client';
import { startDemoSshd, type DemoSshd } from '../../local/demo/sshd';
import type { LocalControlPlane } from '../../local/control-plane';
import { devIssuerConfig, withDevIssuer, type TokenRequest } from '../../local/oidc/dev-issuer';
import { api, startTestControlPlane, tokenFor, waitFor } from './control-plane';
import { listenerEndpoint } from './pg-stack';

export const SSH_TEST_POLICY = `
targets:
  - { name: box, protocol: ssh, agent: ssh-agent }
  - { name: box-mismatch, protocol: ssh, agent: ssh-agent }
reviewers: { dba: [{ subject: bob, email: bob@example.com }] }
rules:
  - name: support
    targets: [box, box-mismatch]
    subjects: { groups: [support] }
    actions: { read: allow, write: { approve: { groups: [dba], timeoutSeconds: 60 } }, shell: allow, unknown: deny }
    forwards: ['127.0.0.1:*']
  - name: analysts
    targets: [box]
    subjects: { groups: [analyst] }
    actions: { read: allow, write: deny, shell: deny, unknown: deny }
  - name: operators
    targets: [box]
    subjects: { groups: [ops] }
    actions: { read: allow, write: { approve: { groups: [dba], timeoutSeconds: 60 } }, shell: { approve: { groups: [dba], timeoutSeconds: 60 } } }
  - name: loader
    targets: [box]
    subjects: { users: [loader] }
    actions: { read: allow, write: allow, shell: allow }
blocks:
  - { name: no-wipe, targets: [box], commands: ['rm -rf /*'] }
masks:
  - { name: secrets, targets: [box], subjects: { groups: [support, analyst, ops] }, detectors: [aws-access-key-id, email] }
`;

export interface SshStack {
  readonly cp: LocalControlPlane;
  readonly sshd: DemoSshd;
  readonly agent: RunningAgent;
  readonly stateDir: string;
  endpoint(target: string): { host: string; port: number };
  /** A known_hosts file naming the agent's host key for a target. */
  knownHosts(target: string): Promise<string>;
  token(user: string, groups: string[], claims?: Partial<TokenRequest>): Promise<string>;
  /** The agent's MCP URL (with `mcp: true`). */
  mcpUrl(): string;
  stop(): Promise<void>;
}

/** A real sshd (read and write users), the local control plane with the SSH test policy, and an agent serving `box`. */
export async function startSshStack(options: { policy?: string; extraTargets?: (sshd: DemoSshd) => SshTargetConfig[]; mcp?: boolean } = {}): Promise<SshStack> {
  const dir = mkdtempSync(join(tmpdir(), 'tk-ssh-'));
  // The target's users reach their authorized keys and the data directory through it.
  chmodSync(dir, 0o755);
  const sshd = await startDemoSshd({ dir: join(dir, 'sshd') });
  const cp = await startTestControlPlane();
  const root = await tokenFor(cp, 'root', ['admin']);
  const put = await api(cp, root, 'PUT', '/policies', withDevIssuer(options.policy ?? SSH_TEST_POLICY, cp.issuer), { 'if-match': '"0"' });
  if (put.status >= 300) throw new Error(`policy refused: ${JSON.stringify(put.body)}`);
  process.env.SSH_AGENT_KEY = (await api(cp, root, 'POST', '/agents', JSON.stringify({ name: 'ssh-agent' }))).body.key as string;
  const stateDir = join(dir, 'agent');
  const box: SshTargetConfig = {
    name: 'box',
    protocol: 'ssh',
    listen: { host: '127.0.0.1', port: 0 },
    upstream: { host: sshd.host, port: sshd.port },
    hostKey: sshd.hostKey,
    readLogin: sshd.readLogin,
    writeLogin: sshd.writeLogin,
  };
  const quiet = { info: () => undefined, warn: () => undefined, error: (event: string, fields?: Record<string, unknown>) => void process.stderr.write(`agent error ${event} ${JSON.stringify(fields ?? {})}\n`) };
  const agent = await startAgent(
    { name: 'ssh-agent', controlPlane: { url: cp.wsUrl, keyEnv: 'SSH_AGENT_KEY' }, stateDir, identity: { issuers: [devIssuerConfig(cp.issuer, 'data')] }, targets: [box, ...(options.extraTargets?.(sshd) ?? [])], mcp: options.mcp ? { listen: { host: '127.0.0.1', port: 0 } } : undefined },
    { listenerFactories: { ssh: (t, ctx) => startSshListener(t, ctx) }, mcpEndpoint: startAgentMcp, log: quiet },
  );
  await waitFor(() => agent.policy.policy, 30_000, 'policy');
  const stack: SshStack = {
    cp,
    sshd,
    agent,
    stateDir,
    endpoint: (target) => listenerEndpoint(agent, target),
    async knownHosts(target) {
      const { host, port } = stack.endpoint(target);
      const file = join(dir, `known_hosts.${target}`);
      writeFileSync(file, `[${host}]:${port} ${await readHostPublicKeyLine(stateDir, target)}\n`);
      return file;
    },
    token: (user, groups, claims) => tokenFor(cp, user, groups, { ...claims, audience: 'data' }),
    mcpUrl: () => agentMcpUrl(agent),
    async stop() {
      await agent.stop();
      await cp.stop();
      await sshd.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return stack;
}

export interface ClientRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** How long one client run may take before the test fails (held approvals are decided well within it). */
export const CLIENT_RUN_TIMEOUT_MS = 60_000;

/**
 * Runs a real OpenSSH client (`ssh`, `scp`, `sftp`) against a target's agent endpoint, with the token
 * typed by `sshpass` at the password prompt (keyboard-interactive), the agent's host key pinned.
 */
export async function runClient(
  stack: SshStack,
  target: string,
  program: 'ssh' | 'scp' | 'sftp',
  token: string,
  args: (dest: string) => string[],
  /** `input` is written to stdin and closes it; a promise keeps stdin open until it resolves. `extraOptions` come first (ssh takes the first value of an option). */
  options: { input?: string | Promise<string>; extraOptions?: string[]; env?: Record<string, string>; onStderr?: (text: string) => void } = {},
): Promise<ClientRun> {
  const { host, port } = stack.endpoint(target);
  const knownHosts = await stack.knownHosts(target);
  const portFlag = program === 'ssh' ? '-p' : '-P';
  const common = [
    ...(options.extraOptions ?? []),
    portFlag,
    String(port),
    '-o',
    `UserKnownHostsFile=${knownHosts}`,
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'PubkeyAuthentication=no',
    '-o',
    'PreferredAuthentications=keyboard-interactive,password',
    '-o',
    'LogLevel=ERROR',
    // `sftp -b` turns BatchMode on, which stops password prompts; the first value given wins.
    '-o',
    'BatchMode=no',
  ];
  const child = spawn('sshpass', ['-e', program, ...common, ...args(`caller@${host}`)], { env: { ...process.env, ...options.env, SSHPASS: token }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString('utf8');
    options.onStderr?.(c.toString('utf8'));
  });
  void Promise.resolve(options.input ?? '').then((text) => child.stdin.end(text));
  const timer = setTimeout(() => child.kill('SIGKILL'), CLIENT_RUN_TIMEOUT_MS);
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** Open TCP connections to the stack's sshd (its own port): the agent's, as tests run no other client of it. */
export function targetConnections(stack: SshStack): number {
  // /proc/net/tcp{,6}: rem_address is HEX_IP:HEX_PORT, st 01 is ESTABLISHED (no iproute2 needed).
  const port = stack.sshd.port.toString(16).toUpperCase().padStart(4, '0');
  return ['/proc/net/tcp', '/proc/net/tcp6']
    .flatMap((file) => readFileSync(file, 'utf8').split('\n').slice(1))
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields[2]?.endsWith(`:${port}`) && fields[3] === '01').length;
}
