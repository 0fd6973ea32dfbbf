/**
 * `npm run bench:ssh`: the SSH relay against a direct connection to the same sshd, in one run:
 * a 100 MB `cat` to /dev/null and a 100 MB `scp` download (BENCH_ROUNDS rounds, direct and through the
 * agent alternating; each round's own ratio, their median and range), the agent's CPU per transfer, the
 * keystroke round trip in a pty shell (p50 of BENCH_KEYS echoes, direct and through the agent), and the
 * agent's RSS after start-up and at its peak. Appends to bench/RESULTS.md. Never part of `npm test`.
 * BENCH_PROFILE=DIR writes the agent's CPU profile there (node --cpu-prof), BENCH_AGENT_FLAGS adds Node
 * flags to the agent (its output lands in the agent's log), BENCH_ONLY=cat or scp runs only that transfer.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Client, type ClientChannel, type ConnectConfig } from 'ssh2';
import { stringify as toYaml } from 'yaml';
import { sshFingerprint } from '../core/ssh/public-key';
import { startDemoSshd } from '../local/demo/sshd';
import { freePort } from '../local/free-port';
import { devIssuerConfig, mintDevToken, withDevIssuer } from '../local/oidc/dev-issuer';
import { controlPlaneInfo, cpuSeconds, currentRssMb, peakRssMb, waitForPort } from './processes';
import { appendResults, benchWorkDir, runBench } from './results';
import { median } from './stats';

const HOST = '127.0.0.1';
const REPO = resolve(__dirname, '..');
const FILE_MB = Number(process.env.BENCH_FILE_MB ?? 100);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const KEYS = Number(process.env.BENCH_KEYS ?? 200);
const POLICY_WAIT_MS = 30_000;
const ONLY = process.env.BENCH_ONLY;
const TRANSFERS = (['cat', 'scp'] as const).filter((t) => !ONLY || t === ONLY);

/** The bench caller reads, writes and opens shells without approval and without masks: the relay alone is measured. */
const POLICY = `
targets:
  - { name: bench-ssh, protocol: ssh, agent: bench-agent }
reviewers: { dba: [{ subject: bob, email: bob@example.com }] }
rules:
  - name: bench
    targets: [bench-ssh]
    subjects: { groups: [bench] }
    actions: { read: allow, write: allow, shell: allow }
`;

/** Runs a client program to completion, its output discarded, and returns its wall time in seconds. */
function timed(program: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const started = process.hrtime.bigint();
  return new Promise((resolveTime, reject) => {
    const child = spawn(program, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.once('close', (code) => (code === 0 ? resolveTime(Number(process.hrtime.bigint() - started) / 1e9) : reject(new Error(`${program} exited ${code}: ${stderr}`))));
  });
}

/** p50 of the time from writing one key in a pty shell to seeing its echo, in ms. */
async function keystrokeP50(config: ConnectConfig): Promise<number> {
  const client = new Client();
  await new Promise<void>((resolveReady, reject) => client.once('ready', () => resolveReady()).once('error', reject).connect({ ...config, readyTimeout: 20_000 }));
  const shell = await new Promise<ClientChannel>((resolveShell, reject) => client.shell({ term: 'dumb', rows: 24, cols: 80 }, (e, s) => (e ? reject(e) : resolveShell(s))));
  // In raw mode `cat` writes back each key as it comes (the terminal's own echo off); the prompt and motd pass first.
  shell.write('stty raw -echo; cat\n');
  await new Promise((r) => setTimeout(r, 1000));
  const samples: number[] = [];
  for (let i = 0; i < KEYS; i++) {
    const key = String.fromCharCode(97 + (i % 26));
    const started = process.hrtime.bigint();
    await new Promise<void>((resolveEcho) => {
      const onData = (chunk: Buffer): void => {
        if (!chunk.toString('utf8').includes(key)) return;
        shell.off('data', onData);
        resolveEcho();
      };
      shell.on('data', onData);
      shell.write(key);
    });
    samples.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  client.end();
  return median(samples);
}

async function main(): Promise<void> {
  const { dir: work, remove } = benchWorkDir('tk-bench-ssh-');
  chmodSync(work, 0o755);
  const children: ChildProcess[] = [];
  try {
    const sshd = await startDemoSshd({ dir: join(work, 'sshd') });
    const big = join(sshd.dataDir, 'big.bin');
    const fd = openSync(big, 'w', 0o644);
    for (let i = 0; i < FILE_MB; i++) writeSync(fd, randomBytes(1024 * 1024));
    closeSync(fd);

    const cp = spawn('nice', ['-n', '19', process.execPath, '-r', 'tsx/cjs', join(__dirname, 'control-plane-process.ts'), work, HOST], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, LOG_LEVEL: 'warn' } });
    children.push(cp);
    const info = await controlPlaneInfo(cp);
    const admin = { authorization: `Bearer ${await mintDevToken(info.issuer, info.signingKey, { user: 'root', groups: ['admin'], audience: 'api' })}` };
    await fetch(`${info.httpUrl}/policies`, { method: 'PUT', headers: { ...admin, 'if-match': '"0"' }, body: withDevIssuer(POLICY, info.issuer) });
    const registered = await fetch(`${info.httpUrl}/agents`, { method: 'POST', headers: admin, body: JSON.stringify({ name: 'bench-agent' }) });
    const agentKey = ((await registered.json()) as { key: string }).key;

    const agentDir = join(work, 'agent');
    mkdirSync(agentDir, { recursive: true });
    const agentPort = await freePort(HOST);
    const target = { name: 'bench-ssh', protocol: 'ssh', listen: { host: HOST, port: agentPort }, upstream: { host: sshd.host, port: sshd.port }, hostKey: sshd.hostKey, readLogin: sshd.readLogin, writeLogin: sshd.writeLogin };
    writeFileSync(join(agentDir, 'agent.yaml'), toYaml({ name: 'bench-agent', controlPlane: { url: info.wsUrl }, stateDir: 'state', identity: { issuers: [devIssuerConfig(info.issuer, 'data')] }, targets: [target] }));
    const agentLog = openSync(join(agentDir, 'agent.log'), 'a');
    const flags = [...(process.env.BENCH_PROFILE ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_PROFILE] : []), ...(process.env.BENCH_AGENT_FLAGS ?? '').split(' ').filter(Boolean)];
    const agent = spawn(process.execPath, [...flags, join(REPO, 'cli/bin.cjs'), 'agent', '--config', join(agentDir, 'agent.yaml')], { stdio: ['ignore', agentLog, agentLog], env: { ...process.env, TWOKEY_AGENT_KEY: agentKey, LOG_LEVEL: 'warn' } });
    children.push(agent);
    await waitForPort(agentPort, HOST);
    const token = await mintDevToken(info.issuer, info.signingKey, { user: 'bench', groups: ['bench'], audience: 'data', ttlSeconds: 3600 });

    const hostPublic = readFileSync(join(sshd.dataDir, '..', 'host_key.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ');
    const agentPublic = readFileSync(join(agentDir, 'state', 'ssh', 'bench-ssh', 'host_key.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ');
    const knownHosts = join(work, 'known_hosts');
    writeFileSync(knownHosts, `[${HOST}]:${sshd.port} ${hostPublic}\n[${HOST}]:${agentPort} ${agentPublic}\n`);
    const common = ['-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'LogLevel=ERROR'];
    const direct = { viaAgent: false, env: {}, port: sshd.port, auth: ['-o', 'BatchMode=yes', '-i', sshd.readLogin.keyFile], user: sshd.readLogin.user };
    const viaAgent = { viaAgent: true, env: { SSHPASS: token }, port: agentPort, auth: ['-o', 'PubkeyAuthentication=no', '-o', 'PreferredAuthentications=keyboard-interactive'], user: 'bench' };
    type Path = typeof direct;
    /** A client through `path`: plain for the direct login (its key), under sshpass for the agent (the token). */
    const run = (path: Path, client: 'ssh' | 'scp', args: string[]): Promise<number> =>
      timed(path.viaAgent ? 'sshpass' : client, [...(path.viaAgent ? ['-e', client] : []), ...common, ...path.auth, client === 'ssh' ? '-p' : '-P', String(path.port), ...args], path.env);
    const transfer = { cat: (p: Path): Promise<number> => run(p, 'ssh', [`${p.user}@${HOST}`, `cat ${big}`]), scp: (p: Path): Promise<number> => run(p, 'scp', [`${p.user}@${HOST}:${big}`, '/dev/null']) };

    // Until the agent has its policy, every session is refused.
    const deadline = Date.now() + POLICY_WAIT_MS;
    for (;;) {
      try {
        await timed('sshpass', ['-e', 'ssh', ...common, ...viaAgent.auth, '-p', String(agentPort), `bench@${HOST}`, 'true'], viaAgent.env);
        break;
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 500));
      }
    }

    const pid = agent.pid as number;
    const startRss = { now: currentRssMb(pid), peak: peakRssMb(pid) };
    type Sample = { direct: number; agent: number; agentCpu: number };
    const results = { cat: [] as Sample[], scp: [] as Sample[] };
    /** A transfer through the agent: its wall time and the agent's CPU time during it. */
    const viaAgentTimed = async (name: (typeof TRANSFERS)[number]): Promise<{ seconds: number; cpu: number }> => {
      const cpu = cpuSeconds(pid);
      const seconds = await transfer[name](viaAgent);
      return { seconds, cpu: cpuSeconds(pid) - cpu };
    };
    for (let round = 0; round < ROUNDS; round++) {
      for (const name of TRANSFERS) {
        // Alternate which goes first, so that neither always meets a warmer cache.
        let d: number;
        let a: { seconds: number; cpu: number };
        if (round % 2 === 0) {
          d = await transfer[name](direct);
          a = await viaAgentTimed(name);
        } else {
          a = await viaAgentTimed(name);
          d = await transfer[name](direct);
        }
        results[name].push({ direct: d, agent: a.seconds, agentCpu: a.cpu });
      }
      console.log(`round ${round + 1}/${ROUNDS}: ${JSON.stringify(results)}`);
    }
    const fingerprint = sshFingerprint(Buffer.from(agentPublic.split(' ')[1] ?? '', 'base64'));
    const keysDirect = await keystrokeP50({ host: HOST, port: sshd.port, username: sshd.readLogin.user, privateKey: readFileSync(sshd.readLogin.keyFile), hostVerifier: (k: Buffer) => sshFingerprint(k) === sshd.hostKey });
    const keysAgent = await keystrokeP50({ host: HOST, port: agentPort, username: 'bench', password: token, hostVerifier: (k: Buffer) => sshFingerprint(k) === fingerprint });
    const rss = peakRssMb(pid);

    const what = { cat: '`ssh host cat FILE` (to /dev/null at the caller)', scp: '`scp host:FILE /dev/null` (SFTP)' };
    const line = (name: (typeof TRANSFERS)[number]): string => {
      const samples = results[name];
      const d = median(samples.map((s) => s.direct));
      const a = median(samples.map((s) => s.agent));
      const ratios = samples.map((s) => s.direct / s.agent);
      return `| ${what[name]} | ${d.toFixed(2)} s (${(FILE_MB / d).toFixed(0)} MB/s) | ${a.toFixed(2)} s (${(FILE_MB / a).toFixed(0)} MB/s) | ${median(ratios).toFixed(2)} | ${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)} | ${median(samples.map((s) => s.agentCpu)).toFixed(2)} s |`;
    };
    const lines = [
      `| ${FILE_MB} MB, ${ROUNDS} rounds | direct (median) | through the agent (median) | agent/direct throughput (median of the rounds' own) | range over the rounds | agent CPU per transfer (median) |`,
      '|---|---|---|---|---|---|',
      ...TRANSFERS.map(line),
      '',
      `keystroke round trip in a pty shell, p50 of ${KEYS}: direct ${keysDirect.toFixed(2)} ms, through the agent ${keysAgent.toFixed(2)} ms, added ${(keysAgent - keysDirect).toFixed(2)} ms`,
      '',
      `agent RSS after start-up ${startRss.now.toFixed(0)} MB (peak ${startRss.peak.toFixed(0)} MB while starting); peak over the run: ${rss.toFixed(0)} MB`,
    ];
    console.log(lines.join('\n'));
    appendResults(`${ONLY ? `BENCH_ONLY=${ONLY} ` : ''}npm run bench:ssh (${ROUNDS} rounds of ${FILE_MB} MB, ${KEYS} keys, local stack)`, lines);
    await sshd.stop();
  } finally {
    // Stopped before the work dir goes: the control plane's S3 stand-in may still be writing into it.
    await Promise.all(children.map((child) => (child.exitCode === null ? new Promise((r) => child.once('exit', r).kill('SIGTERM')) : undefined)));
    remove();
  }
}

runBench(main);
