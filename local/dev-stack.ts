import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, openSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { MCP_ENDPOINT_FILE } from '../agent/config';
import { LocalSlack } from './slack/slack-api';
import { startLocalControlPlane, type LocalControlPlane } from './control-plane';
import { DEMO_KUBE_TARGET, startDemoKubernetes, type DemoKubernetes } from './demo/kubernetes';
import { startDemoPostgres, DEMO_DATABASE, type DemoPostgres } from './demo/postgres';
import { canRunSshd, startDemoSshd, type DemoSshd } from './demo/sshd';
import { DEV_INFO_FILE, readDevUsers, type DevInfo } from './dev-config';
import { freePort } from './free-port';
import { IDP_AUDIENCES, IDP_CLI_CLIENT_ID, IDP_GROUPS_CLAIM, IDP_RESOURCES, IDP_REVIEW_CLIENT_ID } from './idp/oidc-idp';
import { spawnOidcIdp, type OidcIdpProcess } from './idp/oidc-idp-process';
import { DEV_AUDIENCES, DEV_GROUPS_CLAIM, devIssuerConfig, mintDevToken, planeIssuerConfig, withDevIssuer } from './oidc/dev-issuer';

export const DEMO_AGENT = 'demo-agent';
export const DEMO_TARGET = 'demo-pg';
export const DEMO_SSH_TARGET = 'demo-ssh';
export const DEFAULT_PORTS = { http: 8787, dynamo: 8788, s3: 8789, postgres: 5433, agentPostgres: 6543, idp: 8790, agentMcp: 6580, agentKubernetes: 6443, sshd: 2223, agentSsh: 2222 } as const;
export const IDP_SERVICE_SECRET_FILE = 'idp-service-secret';
const AGENT_READY_TIMEOUT_MS = 30_000;
const AGENT_STOP_TIMEOUT_MS = 5_000;
const REPO_ROOT = resolve(__dirname, '..');

export interface DevStackOptions {
  readonly dataDir: string;
  readonly memory: boolean;
  readonly fresh: boolean;
  readonly autoPorts: boolean;
  readonly demo: boolean;
  readonly policyFile: string;
  /** `oidc`: also run the local OpenID provider (oidc-provider) that `twokey login` signs in with. */
  readonly idp?: 'oidc';
  /** Also run the Slack API stand-in (users from examples/dev/users.yaml as U0ALICE..., channel C0DBA). */
  readonly slack?: boolean;
  readonly host?: string;
  readonly log: (line: string) => void;
}

export interface DevStack {
  readonly info: DevInfo;
  readonly controlPlane: LocalControlPlane;
  readonly agentProcess: ChildProcess | undefined;
  stop(): Promise<void>;
}

async function adminCall(cp: LocalControlPlane, method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<unknown> {
  const token = await mintDevToken(cp.issuer, cp.signingKey, { user: 'twokey-dev', groups: ['admin'], audience: 'api', ttlSeconds: 300 });
  const res = await fetch(`${cp.httpUrl}${path}`, { method, body, headers: { authorization: `Bearer ${token}`, ...headers } });
  const json = (await res.json()) as unknown;
  if (res.status === 404 && method === 'GET') return undefined;
  if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function waitForFile(file: string, child: ChildProcess, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the agent exited with code ${child.exitCode}; see its log`);
    if (existsSync(file)) return readFile(file, 'utf8');
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the agent did not start within ${timeoutMs / 1000}s`);
}

/**
 * The local OpenID provider; its service client's secret goes to DIR/idp-service-secret (0600) for
 * client-credentials tries. Its review client is the control plane's, for reviewers' sign-in.
 */
async function startDevIdp(dataDir: string, port: number, controlPlaneUrl: string): Promise<{ provider: OidcIdpProcess; reviewerOidc: { issuer: string; clientId: string; clientSecret: string } }> {
  const secret = randomBytes(24).toString('base64url');
  const reviewSecret = randomBytes(24).toString('base64url');
  await writeFile(join(dataDir, IDP_SERVICE_SECRET_FILE), secret, { mode: 0o600 });
  const provider = await spawnOidcIdp({
    TWOKEY_IDP_PORT: String(port),
    TWOKEY_IDP_SERVICE_SECRET: secret,
    TWOKEY_IDP_SERVICE_GROUPS: 'ci',
    TWOKEY_IDP_REVIEW_SECRET: reviewSecret,
    TWOKEY_IDP_REVIEW_REDIRECT: `${controlPlaneUrl}/approvals/sign-in/callback`,
  });
  return { provider, reviewerOidc: { issuer: provider.issuer, clientId: IDP_REVIEW_CLIENT_ID, clientSecret: reviewSecret } };
}

/** With `--idp oidc` the demo's users and reviewers are the provider's, and dba reviewers sign in with it to vote. */
const IDP_REVIEWER_SIGN_IN_GROUPS = ['dba'];

/** The Slack stand-in with the dev users (U0ALICE, U0BOB, ...; emails confirmed) and the demo policy's channel. */
async function startDevSlack(host: string): Promise<{ stand: LocalSlack; settings: { apiUrl: string; botToken: string; signingSecret: string } }> {
  const users = readDevUsers();
  const botToken = `xoxb-${randomBytes(12).toString('hex')}`;
  const signingSecret = randomBytes(16).toString('hex');
  const stand = new LocalSlack({
    botToken,
    signingSecret,
    channels: ['C0DBA'],
    users: Object.fromEntries(Object.entries(users).map(([name, u]) => [`U0${name.toUpperCase()}`, { email: u.email, emailConfirmed: true }])),
  });
  return { stand, settings: { apiUrl: await stand.start(host), botToken, signingSecret } };
}

/**
 * `twokey dev`: the control plane with its stand-ins, the demo database and Kubernetes API server (the
 * test fixture), and one agent (a child process running `twokey agent`) serving `demo-pg` and `demo-k8s`. Writes `DIR/dev.json` with the real endpoints.
 */
export async function startDevStack(options: DevStackOptions): Promise<DevStack> {
  const host = options.host ?? '127.0.0.1';
  const dataDir = resolve(options.dataDir);
  if (options.fresh) await rm(dataDir, { recursive: true, force: true });
  await mkdir(join(dataDir, 'logs'), { recursive: true });
  await chmod(dataDir, 0o755);
  const outboxDir = join(dataDir, 'outbox');
  await mkdir(outboxDir, { recursive: true });

  const port = async (fixed: number): Promise<number> => (options.autoPorts ? freePort(host) : fixed);
  const stoppers: (() => Promise<void>)[] = [];
  const stopAll = async (): Promise<void> => {
    for (const stop of stoppers.reverse()) await stop().catch((e: unknown) => options.log(`stop: ${String(e)}`));
    stoppers.length = 0;
  };

  try {
    // The control plane's port is chosen first: the provider's review client redirects to it.
    const httpPort = await port(DEFAULT_PORTS.http);
    const devIdp = options.idp === 'oidc' ? await startDevIdp(dataDir, options.autoPorts ? 0 : DEFAULT_PORTS.idp, `http://${host}:${httpPort}`) : undefined;
    const idp = devIdp?.provider;
    if (idp) stoppers.push(() => idp.stop());
    const slack = options.slack ? await startDevSlack(host) : undefined;
    if (slack) stoppers.push(() => slack.stand.stop());
    const controlPlane = await startLocalControlPlane({
      extraIssuers: idp ? [planeIssuerConfig(idp.issuer, IDP_AUDIENCES, 'api', IDP_GROUPS_CLAIM)] : [],
      slack: slack?.settings,
      dataDir: options.memory ? undefined : dataDir,
      s3Dir: join(dataDir, 's3'),
      outboxDir,
      host,
      ports: options.autoPorts ? { http: httpPort, dynamo: 0, s3: 0 } : DEFAULT_PORTS,
      reviewerOidc: devIdp?.reviewerOidc,
      log: options.log,
    });
    stoppers.push(() => controlPlane.stop());
    if (slack) slack.stand.interactionsUrl = `${controlPlane.httpUrl}/slack/interactions`;

    // A deployment's first policy is stored at once (nothing to protect yet); later changes need a
    // second admin. The demo policy is seeded that way, once: a restart keeps whatever is stored.
    const current = (await adminCall(controlPlane, 'GET', '/policies')) as { version?: number } | undefined;
    if (!current?.version) {
      const source = idp
        ? withDevIssuer(await readFile(options.policyFile, 'utf8'), idp.issuer, IDP_REVIEWER_SIGN_IN_GROUPS)
        : withDevIssuer(await readFile(options.policyFile, 'utf8'), controlPlane.issuer);
      await adminCall(controlPlane, 'PUT', '/policies', source, { 'if-match': '"0"', 'content-type': 'application/yaml' });
    }
    const registered = (await adminCall(controlPlane, 'POST', '/agents', JSON.stringify({ name: DEMO_AGENT, rotate: true }), {
      'content-type': 'application/json',
    })) as { key: string };

    let postgres: DemoPostgres | undefined;
    if (options.demo) {
      postgres = await startDemoPostgres({ dir: join(dataDir, 'postgres'), host, port: await port(DEFAULT_PORTS.postgres), log: options.log });
      const pgServer = postgres;
      stoppers.push(() => pgServer.stop());
    }
    // The demo SSH target needs OpenSSH's server (and root, to add its read and write users).
    let sshd: DemoSshd | undefined;
    if (options.demo && canRunSshd()) {
      sshd = await startDemoSshd({ dir: join(dataDir, 'sshd'), host, port: await port(DEFAULT_PORTS.sshd) });
      const sshServer = sshd;
      stoppers.push(() => sshServer.stop());
    }

    const agentDir = join(dataDir, 'agent');
    await mkdir(agentDir, { recursive: true, mode: 0o700 });
    let kube: DemoKubernetes | undefined;
    if (options.demo) {
      kube = await startDemoKubernetes(agentDir, host, await port(DEFAULT_PORTS.agentKubernetes));
      const kubeServer = kube;
      stoppers.push(() => kubeServer.stop());
    }
    await writeFile(join(agentDir, 'agent.key'), registered.key, { mode: 0o600 });
    const endpointsFile = join(agentDir, 'state', 'endpoints.json');
    await rm(endpointsFile, { force: true });
    await rm(join(agentDir, 'state', MCP_ENDPOINT_FILE), { force: true });
    const agentConfig = {
      name: DEMO_AGENT,
      controlPlane: { url: controlPlane.wsUrl, keyFile: 'agent.key' },
      stateDir: 'state',
      identity: {
        issuers: [
          devIssuerConfig(controlPlane.issuer, 'data'),
          // The control plane's own tokens (SAML sign-ins), as on AWS.
          planeIssuerConfig(controlPlane.tokenIssuer, DEV_AUDIENCES, 'data', DEV_GROUPS_CLAIM),
          ...(idp ? [planeIssuerConfig(idp.issuer, IDP_AUDIENCES, 'data', IDP_GROUPS_CLAIM)] : []),
        ],
      },
      targets: [
        ...(postgres
          ? [
              {
                name: DEMO_TARGET,
                protocol: 'postgres',
                listen: { host, port: options.autoPorts ? 0 : DEFAULT_PORTS.agentPostgres },
                upstream: { host, port: postgres.port, database: DEMO_DATABASE },
                readCredential: postgres.read,
                writeCredential: postgres.write,
              },
            ]
          : []),
        ...(kube ? [kube.target] : []),
        ...(sshd
          ? [
              {
                name: DEMO_SSH_TARGET,
                protocol: 'ssh',
                listen: { host, port: options.autoPorts ? 0 : DEFAULT_PORTS.agentSsh },
                upstream: { host, port: sshd.port },
                hostKey: sshd.hostKey,
                readLogin: sshd.readLogin,
                writeLogin: sshd.writeLogin,
              },
            ]
          : []),
      ],
      mcp: { listen: { host, port: options.autoPorts ? 0 : DEFAULT_PORTS.agentMcp } },
    };
    const configFile = join(agentDir, 'agent.yaml');
    await writeFile(configFile, toYaml(agentConfig), { mode: 0o600 });

    const logFd = openSync(join(dataDir, 'logs', 'agent.log'), 'a');
    const agentProcess = spawn(process.execPath, [join(REPO_ROOT, 'cli', 'bin.cjs'), 'agent', '--config', configFile], {
      stdio: ['ignore', logFd, logFd],
      env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'info' },
    });
    stoppers.push(async () => {
      if (agentProcess.exitCode !== null) return;
      const exited = new Promise<void>((r) => agentProcess.once('exit', () => r()));
      agentProcess.kill('SIGTERM');
      const timer = setTimeout(() => agentProcess.kill('SIGKILL'), AGENT_STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    });
    const endpoints = JSON.parse(await waitForFile(endpointsFile, agentProcess, AGENT_READY_TIMEOUT_MS)) as Record<string, string>;
    const mcp = JSON.parse(await readFile(join(agentDir, 'state', MCP_ENDPOINT_FILE), 'utf8')) as { endpoint: string };

    const info: DevInfo = {
      controlPlane: { httpUrl: controlPlane.httpUrl, wsUrl: controlPlane.wsUrl },
      issuer: controlPlane.issuer,
      outboxDir,
      targets: {
        ...(postgres ? { [DEMO_TARGET]: { protocol: 'postgres', endpoint: endpoints[DEMO_TARGET] ?? null, adminUrl: postgres.adminUrl, database: DEMO_DATABASE } } : {}),
        ...(kube ? { [DEMO_KUBE_TARGET]: { protocol: 'kubernetes', endpoint: endpoints[DEMO_KUBE_TARGET] ?? null } } : {}),
        ...(sshd ? { [DEMO_SSH_TARGET]: { protocol: 'ssh', endpoint: endpoints[DEMO_SSH_TARGET] ?? null, dataDir: sshd.dataDir } } : {}),
      },
      pid: process.pid,
      mcp: { url: `http://${mcp.endpoint}/mcp` },
      ...(slack ? { slack: { viewer: slack.settings.apiUrl.replace(/api\/$/, '') } } : {}),
      ...(idp ? { idp: { issuer: idp.issuer, clientId: IDP_CLI_CLIENT_ID, resource: IDP_RESOURCES.data } } : {}),
    };
    await writeFile(join(dataDir, DEV_INFO_FILE), JSON.stringify(info, null, 2), { mode: 0o600 });
    stoppers.push(() => rm(join(dataDir, DEV_INFO_FILE), { force: true }));
    return { info, controlPlane, agentProcess, stop: stopAll };
  } catch (e) {
    await stopAll();
    throw e;
  }
}
