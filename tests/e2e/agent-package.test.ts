import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import type { LocalControlPlane } from '../../local/control-plane';
import { buildAgentPackage } from '../../packages/agent/build';
import { twokey } from '../support/cli';
import { api, startTestControlPlane, tokenFor, waitFor } from '../support/control-plane';
import { startTestPostgres, type TestPostgres } from '../support/postgres';

const run = promisify(execFile);
const ROOT = join(__dirname, '..', '..');
const POLICY = `
targets:
  - { name: pkg-db, protocol: postgres, agent: pkg-agent }
reviewers: { dba: [{ subject: bob, email: bob@example.com, issuer: 'https://issuer.test' }] }
rules:
  - name: support
    targets: [pkg-db]
    subjects: { groups: [support] }
    actions: { read: allow, write: { approve: { groups: [dba] } } }
`;

/** `npm pack DIR` into `dest`; returns the tarball's path. */
async function pack(dir: string, dest: string): Promise<string> {
  const { stdout } = await run('npm', ['pack', dir, '--pack-destination', dest, '--silent'], { cwd: dest });
  return join(dest, stdout.trim().split('\n').pop() as string);
}

/** Names of the packages installed in node_modules (scoped ones as @scope/name). */
const installed = (dir: string): string[] =>
  readdirSync(join(dir, 'node_modules'))
    .filter((n) => !n.startsWith('.'))
    .flatMap((n) => (n.startsWith('@') ? readdirSync(join(dir, 'node_modules', n)).map((m) => `${n}/${m}`) : [n]))
    .sort();

describe('the twokey-agent npm package', () => {
  let installDir: string;
  let cp: LocalControlPlane;
  let pgServer: TestPostgres;
  let agent: ChildProcess | undefined;
  let agentOutput = '';

  beforeAll(async () => {
    const work = mkdtempSync(join(tmpdir(), 'tk-agent-pkg-'));
    const tarball = await pack(await buildAgentPackage(join(work, 'package')), work);
    // Offline: the agent's one dependency (and its own) are packed from this checkout's node_modules.
    const parser = await pack(join(ROOT, 'node_modules', 'libpg-query'), work);
    const parserTypes = await pack(join(ROOT, 'node_modules', '@pgsql', 'types'), work);
    installDir = mkdtempSync(join(tmpdir(), 'tk-agent-install-'));
    writeFileSync(join(installDir, 'package.json'), '{ "name": "agent-host", "private": true }\n');
    await run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', tarball, parser, parserTypes], { cwd: installDir });
    [pgServer, cp] = await Promise.all([startTestPostgres(), startTestControlPlane()]);
  }, 240_000);
  afterAll(async () => {
    if (agent && agent.exitCode === null) {
      agent.kill('SIGTERM');
      await new Promise((r) => agent?.once('exit', r));
    }
    await cp?.stop();
    await pgServer?.stop();
  });

  it('installs from its tarball with libpg-query as its only dependency, none of the control plane’s', () => {
    expect(installed(installDir)).toEqual(['@pgsql/types', 'libpg-query', 'twokey-agent']);
    expect(existsSync(join(installDir, 'node_modules', '.bin', 'twokey-agent'))).toBe(true);
  });

  it('ships a hardened systemd unit (own user, read-only system, no new privileges) and a Dockerfile', () => {
    const unit = readFileSync(join(installDir, 'node_modules', 'twokey-agent', 'twokey-agent.service'), 'utf8');
    for (const line of ['User=twokey', 'ProtectSystem=strict', 'NoNewPrivileges=yes', 'CapabilityBoundingSet=', 'StateDirectory=twokey', 'EnvironmentFile=/etc/twokey/agent.env']) {
      expect(unit.split('\n')).toContain(line);
    }
    expect(readFileSync(join(installDir, 'node_modules', 'twokey-agent', 'Dockerfile'), 'utf8')).toMatch(/^USER 10001:10001$/m);
  });

  it('runs from that install, configured by `twokey agents register`, against the local control plane and the demo database', async () => {
    const root = await tokenFor(cp, 'root', ['admin']);
    expect((await api(cp, root, 'PUT', '/policies', POLICY, { 'if-match': '"0"' })).status).toBe(200);
    const configFile = join(installDir, 'agent.yaml');
    const registered = await twokey(['agents', 'register', 'pkg-agent', '-o', configFile, '--url', cp.httpUrl], { TWOKEY_TOKEN: root });
    expect(registered.code).toBe(0);
    expect(registered.stdout).toMatch(/npm install --global twokey-agent@\d+\.\d+\.\d+/);
    const key = /^TWOKEY_AGENT_KEY=(\S+)$/m.exec(registered.stdout)?.[1] as string;

    // The admin fills in the upstream; everything else is as printed.
    const config = parse(readFileSync(configFile, 'utf8')) as { controlPlane: { url: string }; stateDir: string; targets: Record<string, unknown>[] };
    expect(config.controlPlane.url).toBe(cp.wsUrl);
    expect(config.targets.map((t) => t.name)).toEqual(['pkg-db']);
    const stateDir = mkdtempSync(join(tmpdir(), 'tk-agent-state-'));
    const target = config.targets[0] as { listen: unknown; upstream: unknown; readCredential: { passwordEnv: string }; writeCredential: { passwordEnv: string } };
    target.listen = { host: '127.0.0.1', port: 0 };
    target.upstream = { host: '127.0.0.1', port: pgServer.port, database: 'demo' };
    writeFileSync(configFile, stringify({ ...config, stateDir, targets: [{ ...target, readCredential: { ...target.readCredential, user: pgServer.read.user }, writeCredential: { ...target.writeCredential, user: pgServer.write.user } }] }));

    agent = spawn(join(installDir, 'node_modules', '.bin', 'twokey-agent'), ['--config', configFile], {
      cwd: installDir,
      env: { PATH: process.env.PATH, TWOKEY_AGENT_KEY: key, [target.readCredential.passwordEnv]: pgServer.read.password, [target.writeCredential.passwordEnv]: pgServer.write.password },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    agent.stdout?.on('data', (d) => (agentOutput += String(d)));
    agent.stderr?.on('data', (d) => (agentOutput += String(d)));
    const endpoints = join(stateDir, 'endpoints.json');
    const endpoint = await waitFor(() => (existsSync(endpoints) ? (JSON.parse(readFileSync(endpoints, 'utf8')) as Record<string, string>)['pkg-db'] : undefined), 30_000, `the agent's endpoint; output:\n${agentOutput}`);
    const [host, port] = endpoint.split(':') as [string, string];

    const alice = await tokenFor(cp, 'alice', ['support'], { audience: 'data' });
    await waitFor(async () => ((await api(cp, root, 'GET', '/agents')).body.agents as { name: string; connected: boolean }[]).find((a) => a.name === 'pkg-agent' && a.connected), 20_000, 'agent connected');
    const { stdout } = await run('psql', [`host=${host} port=${port} dbname=demo user=alice`, '-X', '-A', '-t', '-c', 'SELECT count(*) > 0 FROM customers'], { env: { ...process.env, PGPASSWORD: alice } });
    expect(stdout.trim()).toBe('t');

    // Its recording reaches the (strict) S3 stand-in through the checksummed upload path.
    const erin = await tokenFor(cp, 'erin', ['auditor']);
    const session = await waitFor(
      async () => ((await api(cp, erin, 'GET', '/sessions?target=pkg-db')).body.sessions as { status: string }[]).find((s) => s.status === 'complete'),
      30_000,
      `a complete recording; agent output:\n${agentOutput}`,
    );
    expect(session).toMatchObject({ status: 'complete' });
  }, 120_000);
});
