/**
 * `npm run bench:pg`: the agent against a direct connection and pgbouncer (session pooling), in one run
 * on this machine. Prints TPS, average latency and ratios; streams a 1,000,000-row SELECT directly and
 * through the agent and reports the agent's peak RSS; appends the results to bench/RESULTS.md.
 *
 * Never part of `npm test`. Installs pgbouncer with apt-get when missing (as root).
 *
 * Environment: BENCH_MODES (simple,prepared | none), BENCH_CLIENTS (1,8), BENCH_SECONDS (per cell),
 * BENCH_ONLY=recording (only the recording-overhead cells) or selects (only the 1,000,000-row SELECTs), BENCH_SIDE=on|off (only one side of them,
 * for profiling), BENCH_VERBOSE (a line per overhead cell: TPS, CPU per transaction of the agent, of its
 * main thread and of the whole machine, the agent's context switches), BENCH_PROFILE=DIR (CPU profiles of the agent and, in DIR/control-plane, of the local stack), BENCH_AGENT_FLAGS (Node flags for the agent, e.g. --perf-basic-prof for perf), BENCH_RATE
 * (the overhead cells at a fixed rate), BENCH_OVERHEAD_CLIENTS (1,8), BENCH_OVERHEAD_SECONDS (2 per
 * overhead cell), BENCH_OVERHEAD_ROUNDS (60 cell pairs), BENCH_OVERHEAD_BLOCKS (4: the recorded target
 * alternates between them), BENCH_CALIBRATE=1 (both cells of every pair with recording off: what the
 * method reads when there is nothing to find), BENCH_SWAP_TARGETS=1 (the twin target recorded in the
 * first block instead of demo-pg), BENCH_CONTROL_PLANE=run (the local
 * control plane keeps running during the overhead cells instead of being paused), BENCH_KEEP (keep the work directory),
 * BENCH_BASELINE=DIR (a second agent run from another checkout, DIR, e.g. `git worktree add DIR main`
 * with its node_modules: this agent against it in BENCH_BASELINE_ROUNDS pairs of cells on an unrecorded
 * target, a before/after comparison in one run; BENCH_ONLY=baseline runs only that).
 */
import { execFile, execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { Client as PgClient } from 'pg';
import { parse as fromYaml, stringify as toYaml } from 'yaml';
import { MessageFramer } from '../agent/postgres/protocol/framer';
import { queryMessage } from '../agent/postgres/protocol/writer';
import { connectUpstream } from '../agent/postgres/upstream/connect';
import { startDemoPostgres, DEMO_DATABASE } from '../local/demo/postgres';
import { freePort } from '../local/free-port';
import { devIssuerConfig, mintDevToken, withDevIssuer, type DevSigningKey } from '../local/oidc/dev-issuer';
import { postDecision, waitForMail } from '../tests/support/outbox';
import { CONFIDENCE, offFirst, pairedOverhead } from './paired';
import { CLOCK_TICKS, controlPlaneInfo, cpuSeconds, currentRssMb, peakRssMb, resetPeakRss, statCpuSeconds, statFields, waitForPort } from './processes';
import { appendResults, benchWorkDir, runBench, seedDemoControlPlane } from './results';
import { median } from './stats';

const HOST = '127.0.0.1';
const PGBENCH_SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const PGBENCH_SCALE = 10; // 1,000,000 rows in pgbench_accounts
const BIG_SELECT = 'SELECT * FROM pgbench_accounts';
const MASKED_ROWS = 1_000_000;
const MASKED_ROWS_SQL = `INSERT INTO customers (id, name, email, ssn, card_number, created_at)
  SELECT g, 'Customer ' || g, 'user' || g || '@example.com',
         lpad((100 + g % 600)::text, 3, '0') || '-' || lpad((10 + g % 89)::text, 2, '0') || '-' || lpad((1000 + g % 8999)::text, 4, '0'),
         '4' || lpad((g::bigint * 7919)::text, 15, '0'), timestamptz '2024-01-01' + g * interval '1 minute'
  FROM generate_series((SELECT max(id) + 1 FROM customers), ${MASKED_ROWS}) AS g`;
const MASKED_SELECT = 'SELECT * FROM customers';
const MASKED_ROUNDS = 3;
/**
 * BENCH_OVERHEAD_ROUNDS: off/on cell pairs per mode and client count. With 10 pairs of 8-s cells one
 * run's median read -5% to +6% with recording off on both sides; the median's error falls with the
 * square root of the pairs, and its interval (see paired.ts) says how far it can be trusted.
 */
const OVERHEAD_ROUNDS = Number(process.env.BENCH_OVERHEAD_ROUNDS ?? 60);
if (!(Number.isInteger(OVERHEAD_ROUNDS) && OVERHEAD_ROUNDS > 0)) throw new Error('BENCH_OVERHEAD_ROUNDS: a positive whole number of cell pairs');
/** BENCH_OVERHEAD_SECONDS: each overhead cell's length (pgbench opens its sessions once per cell). */
const OVERHEAD_CELL_SECONDS = Number(process.env.BENCH_OVERHEAD_SECONDS ?? 2);
/**
 * The agent serves the demo database as two targets: `demo-pg` and its twin, one recorded as the
 * policy says and the other with the target's own `recording: { mode: off }`. The overhead cells
 * alternate between them with no policy change in between, so a pair's two cells are seconds apart.
 * BENCH_SWAP_TARGETS=1 records the twin first instead of demo-pg.
 */
const DEMO_TARGET = 'demo-pg';
const TWIN_TARGET = 'demo-pg-twin';
const SWAP_TARGETS = process.env.BENCH_SWAP_TARGETS === '1';
/**
 * BENCH_OVERHEAD_BLOCKS: each configuration's pairs run in this many blocks, and which of the two
 * targets is recorded alternates from block to block (a policy change in between). With recording off
 * on both, the two targets of one agent differed by themselves for a whole run (prepared, one client,
 * 120 pairs: 4.0%, interval 2.5-6.6%, every 20 pairs' median above 2%; the targets swapped, 1.4%):
 * alternating which one is recorded puts such a difference on both sides alike. 1, or even.
 */
const OVERHEAD_BLOCKS = Number(process.env.BENCH_OVERHEAD_BLOCKS ?? 4);
if (!(Number.isInteger(OVERHEAD_BLOCKS) && (OVERHEAD_BLOCKS === 1 || (OVERHEAD_BLOCKS > 0 && OVERHEAD_BLOCKS % 2 === 0)) && OVERHEAD_BLOCKS <= OVERHEAD_ROUNDS)) {
  throw new Error('BENCH_OVERHEAD_BLOCKS: 1, or an even number of blocks no larger than BENCH_OVERHEAD_ROUNDS');
}
/** Which target block `block` records (and compares with the other). */
const recordedIn = (block: number): { recorded: string; unrecorded: string } =>
  (block % 2 === 0) !== SWAP_TARGETS ? { recorded: DEMO_TARGET, unrecorded: TWIN_TARGET } : { recorded: TWIN_TARGET, unrecorded: DEMO_TARGET };
/** A policy change reaches the agent within about a second locally (a 1-s stream poll): checked, up to this long. */
const POLICY_SWITCH_TIMEOUT_MS = 60_000;
/** Seconds of each probe (one client) that checks which target the agent records. */
const PROBE_SECONDS = 1;
/**
 * BENCH_CONTROL_PLANE=run keeps the local control plane running during the overhead cells; by default
 * it is paused (SIGSTOP) for each cell's pgbench and resumed after. Deployed, the control plane and S3
 * are AWS's machines, not the agent's: here they share its two cores, and a recorded cell's session
 * starts and the scale-check session's upload cost them ~130 ms of CPU per 2-s cell (~10 µs per
 * transaction at eight clients, 3% of the machine). The agent's own recording work is all in the cell;
 * it sends to the control plane without waiting for answers, and what the answers start (uploads, the
 * sessions' ends) runs in `settle` after the cell, as it did before.
 */
const PAUSE_CONTROL_PLANE = process.env.BENCH_CONTROL_PLANE !== 'run';
/** A paused control plane is resumed after this long past a cell's end at most (a connection might wait on it). */
const PAUSE_MARGIN_MS = 5_000;
/** Runs of one cell while the control plane is paused, before its failure is the bench's. */
const PAUSED_CELL_ATTEMPTS = 3;
/** After a recorded cell, how long its sessions may take to be sealed, shipped and marked complete. */
const SETTLE_TIMEOUT_MS = 30_000;
const SETTLE_POLL_MS = 100;
/** BENCH_OVERHEAD_CLIENTS: one client (each transaction waits for the last) and eight (the machine saturated). */
const OVERHEAD_CLIENTS = (process.env.BENCH_OVERHEAD_CLIENTS ?? '1,8').split(',').map(Number);
/** BENCH_RATE: the overhead cells at this fixed rate (pgbench -R), to compare CPU per transaction on an unsaturated machine. */
const OVERHEAD_RATE = Number(process.env.BENCH_RATE ?? 0) || undefined;
/** BENCH_CALIBRATE=1: the "on" cells run with recording off too, so the overhead column shows the method's own spread. */
const CALIBRATE = process.env.BENCH_CALIBRATE === '1';
/** Another checkout whose agent this one is compared with, cell pair by cell pair (BENCH_BASELINE). */
const BASELINE_DIR = process.env.BENCH_BASELINE;
const BASELINE_ROUNDS = Number(process.env.BENCH_BASELINE_ROUNDS ?? 20);

const REPO = resolve(__dirname, '..');

interface PgbenchResult {
  tps: number;
  latencyMs: number;
  transactions: number;
}

/** Asynchronous: the timer that resumes a paused control plane must fire while pgbench runs. */
async function pgbench(conninfo: string, mode: string, clients: number, env: NodeJS.ProcessEnv, seconds = PGBENCH_SECONDS, rate?: number): Promise<PgbenchResult> {
  const out = await new Promise<string>((resolveOut, reject) =>
    execFile(
      'pgbench',
      ['-n', '-S', '-M', mode, '-c', String(clients), '-j', String(Math.min(clients, 2)), '-T', String(seconds), ...(rate ? ['-R', String(rate)] : []), conninfo],
      { env: { ...process.env, ...env }, encoding: 'utf8' },
      (error, stdout, stderr) => (error ? reject(new Error(`pgbench failed: ${stderr}`)) : resolveOut(stdout)),
    ),
  );
  const tps = Number(/tps = ([\d.]+)/.exec(out)?.[1]);
  const latencyMs = Number(/latency average = ([\d.]+) ms/.exec(out)?.[1]);
  const transactions = Number(/number of transactions actually processed: (\d+)/.exec(out)?.[1]);
  if (!Number.isFinite(tps) || !Number.isFinite(transactions)) throw new Error(`pgbench output not understood:\n${out}`);
  return { tps, latencyMs, transactions };
}

/** The agent refuses sessions until the control plane sent it the policy, a moment after it listens. */
async function untilAgentHasPolicy(viaAgent: string, token: string): Promise<void> {
  const deadline = Date.now() + POLICY_WAIT_MS;
  for (;;) {
    try {
      await pgbench(viaAgent, 'simple', 1, { PGPASSWORD: token }, 1);
      return;
    } catch (e) {
      if (!String(e).includes('no policy yet') || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, POLICY_POLL_MS));
    }
  }
}
const POLICY_WAIT_MS = 30_000;
const POLICY_POLL_MS = 500;

/** Streams a query's whole result over the simple protocol and counts it: as thin a client as there is. */
async function streamQuery(port: number, user: string, password: string, sql: string): Promise<{ rows: number; bytes: number; seconds: number }> {
  const { socket } = await connectUpstream({ host: HOST, port, user, password, database: DEMO_DATABASE });
  return new Promise((resolvePromise, reject) => {
    const framer = new MessageFramer(64 * 1024 * 1024);
    let rows = 0;
    let bytes = 0;
    const started = Date.now();
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      framer.push(chunk, (_buf, _start, _end, code) => {
        if (code === 0x44) rows++;
        else if (code === 0x45) reject(new Error('query failed'));
        else if (code === 0x5a) {
          socket.end();
          resolvePromise({ rows, bytes, seconds: (Date.now() - started) / 1000 });
        }
      });
    });
    socket.write(queryMessage(sql));
  });
}

/** CPU seconds of a process's main thread (the proxy's event loop), without its helper threads: in user space and in the kernel. */
function mainThreadCpuSeconds(pid: number): { user: number; system: number } {
  const fields = statFields(readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8'));
  return { user: Number(fields[11]) / CLOCK_TICKS, system: Number(fields[12]) / CLOCK_TICKS };
}
/** Context switches of all of a process's threads: voluntary (it waited) and not (it was preempted). */
function contextSwitches(pid: number): { voluntary: number; preempted: number } {
  const total = { voluntary: 0, preempted: 0 };
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
    total.voluntary += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    total.preempted += Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
  }
  return total;
}
/** CPU seconds the whole machine has been busy (all cores, everything but idle and iowait). */
function machineBusySeconds(): number {
  const [, ...ticks] = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).map(Number);
  const busy = ticks.reduce((a, b) => a + b, 0) - (ticks[3] ?? 0) - (ticks[4] ?? 0);
  return busy / CLOCK_TICKS;
}
/** CPU seconds by process name, every process on the machine (kernel threads too; ended children with their parent): where a cell's CPU went. */
function cpuByProcessName(): Map<string, number> {
  const byName = new Map<string, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone since the listing
    }
    let name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')).replace(/\/\d+$|\d+$/, '');
    if (name === 'node') name = nodeProcessName(entry);
    // A kernel worker is named after the work it did last (kworker/1:1-events, then kworker/1:1-mm_percpu_wq):
    // keyed by that name, a renamed one would count all its CPU since boot against the cell.
    else if (name.startsWith('kworker/')) name = 'kworkers';
    byName.set(name, (byName.get(name) ?? 0) + statCpuSeconds(stat, true));
  }
  return byName;
}
/** A Node process by what it runs: the agent, the local stack, this benchmark. */
function nodeProcessName(pid: string): string {
  try {
    const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return `node:${args.slice(1).filter((a) => !a.startsWith('-') && a !== '').slice(-2).join(' ').slice(-40)}`;
  } catch {
    return 'node';
  }
}
/** The largest per-process CPU differences between two snapshots, in µs per transaction. */
function topCpu(before: Map<string, number>, after: Map<string, number>, transactions: number, count = 8): string {
  return [...after]
    .map(([name, s]) => [name, ((s - (before.get(name) ?? 0)) * 1e6) / transactions] as const)
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([name, us]) => `${name} ${us.toFixed(1)}`)
    .join(', ');
}

const BARE_NODE_RELAY = `
const net = require('net');
const [listen, upstream] = process.argv.slice(1).map(Number);
net.createServer({ noDelay: true }, (c) => {
  const u = net.connect(upstream, '127.0.0.1');
  u.setNoDelay(true);
  c.pipe(u); u.pipe(c);
  c.on('error', () => u.destroy()); u.on('error', () => c.destroy());
}).listen(listen, '127.0.0.1');`;

function ensurePgbouncer(): string {
  const found = spawnSync('sh', ['-c', 'command -v pgbouncer || ls /usr/sbin/pgbouncer'], { encoding: 'utf8' }).stdout.trim().split('\n')[0];
  if (found) return found;
  execFileSync('apt-get', ['install', '-y', '-qq', 'pgbouncer'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  return '/usr/sbin/pgbouncer';
}

/** The first line the control-plane process prints: where it listens and the dev issuer's key. */


/**
 * The large SELECTs, run first, on an agent that has not yet held eight recorded pgbench sessions:
 * their peak RSS is their own (the pgbench phase's peak is reported on its own line).
 */
async function largeSelects(s: {
  pg: Awaited<ReturnType<typeof startDemoPostgres>>;
  cp: { issuer: string; signingKey: DevSigningKey };
  agentPid: number;
  agentPort: number;
  token: string;
  idleRssMb: number;
}): Promise<string[]> {
  const { pg, cp, agentPid, agentPort, token, idleRssMb } = s;
  const directBig = await streamQuery(pg.port, pg.read.user, pg.read.password, BIG_SELECT);
  resetPeakRss(agentPid);
  const agentBig = await streamQuery(agentPort, 'bob', token, BIG_SELECT);
  const bigRss = peakRssMb(agentPid);
  // Masking: the demo's customers grown to 1,000,000 rows, read by dave (three masked columns, detectors on the rest).
  const adminClient = new PgClient({ connectionString: pg.adminUrl });
  await adminClient.connect();
  await adminClient.query(MASKED_ROWS_SQL);
  await adminClient.end();
  const dave = await mintDevToken(cp.issuer, cp.signingKey, { user: 'dave', groups: ['analyst'], audience: 'data', ttlSeconds: 3600 });
  // Alternated and repeated: the median of MASKED_ROUNDS runs each way.
  const directRuns: number[] = [];
  const agentRuns: number[] = [];
  let maskedRss = 0;
  let directMasked = { rows: 0, bytes: 0, seconds: 0 };
  let agentMasked = { rows: 0, bytes: 0, seconds: 0 };
  for (let round = 0; round < MASKED_ROUNDS; round++) {
    directMasked = await streamQuery(pg.port, pg.read.user, pg.read.password, MASKED_SELECT);
    directRuns.push(directMasked.seconds);
    resetPeakRss(agentPid);
    agentMasked = await streamQuery(agentPort, 'dave', dave, MASKED_SELECT);
    agentRuns.push(agentMasked.seconds);
    maskedRss = Math.max(maskedRss, peakRssMb(agentPid));
  }
  directMasked = { ...directMasked, seconds: median(directRuns) };
  agentMasked = { ...agentMasked, seconds: median(agentRuns) };
  const maskedLine = `1,000,000-row SELECT * FROM customers, 3 masked columns (dave), median of ${MASKED_ROUNDS}: direct ${directMasked.seconds.toFixed(2)} s (${directMasked.rows} rows, ${(directMasked.bytes / 1e6).toFixed(0)} MB); agent ${agentMasked.seconds.toFixed(2)} s (${agentMasked.rows} rows, ${(agentMasked.bytes / 1e6).toFixed(0)} MB); throughput agent/direct ${(directMasked.seconds / agentMasked.seconds).toFixed(2)}; agent peak RSS during it ${maskedRss.toFixed(0)} MB`;
  console.log(maskedLine);
  const bigLine = `1,000,000-row SELECT: direct ${directBig.seconds.toFixed(2)} s (${directBig.rows} rows, ${(directBig.bytes / 1e6).toFixed(0)} MB); agent ${agentBig.seconds.toFixed(2)} s (${agentBig.rows} rows); throughput agent/direct ${(directBig.seconds / agentBig.seconds).toFixed(2)}; agent peak RSS during it ${bigRss.toFixed(0)} MB (${idleRssMb.toFixed(0)} MB idle after start-up)`;
  console.log(bigLine);
  return ['', bigLine, '', maskedLine];
}

async function main(): Promise<void> {
  const { dir: work, remove: removeWork } = benchWorkDir('tk-bench-');
  chmodSync(work, 0o755);
  const children: ChildProcess[] = [];
  const pg = await startDemoPostgres({ dir: join(work, 'pg'), host: HOST, port: await freePort(HOST), log: () => undefined });
  try {
    execFileSync('pgbench', ['-i', '-q', '-s', String(PGBENCH_SCALE), pg.adminUrl], { stdio: 'ignore' });

    // pgbouncer, session pooling, in front of the same read role.
    const bouncerPort = await freePort(HOST);
    const bouncerDir = join(work, 'pgbouncer');
    execFileSync('mkdir', ['-p', bouncerDir]);
    writeFileSync(join(bouncerDir, 'userlist.txt'), `"${pg.read.user}" "${pg.read.password}"\n`);
    writeFileSync(
      join(bouncerDir, 'pgbouncer.ini'),
      [
        '[databases]',
        `${DEMO_DATABASE} = host=${HOST} port=${pg.port} dbname=${DEMO_DATABASE}`,
        '[pgbouncer]',
        `listen_addr = ${HOST}`,
        `listen_port = ${bouncerPort}`,
        'auth_type = trust',
        `auth_file = ${join(bouncerDir, 'userlist.txt')}`,
        'pool_mode = session',
        'max_client_conn = 100',
        'default_pool_size = 20',
        `unix_socket_dir =`,
        `logfile = ${join(bouncerDir, 'pgbouncer.log')}`,
        '',
      ].join('\n'),
    );
    execFileSync('chown', ['-R', 'postgres:postgres', bouncerDir]);
    const bouncer = spawn(ensurePgbouncer(), ['-u', 'postgres', join(bouncerDir, 'pgbouncer.ini')], { stdio: 'ignore' });
    children.push(bouncer);
    await waitForPort(bouncerPort);

    // The control plane in a process of its own at the lowest CPU priority (see control-plane-process.ts);
    // the agent in its own, as deployed.
    const cpProfile = process.env.BENCH_PROFILE ? ['--cpu-prof', '--cpu-prof-dir', join(process.env.BENCH_PROFILE, 'control-plane')] : [];
    const cpProcess = spawn('nice', ['-n', '19', process.execPath, ...cpProfile, '-r', 'tsx/cjs', join(__dirname, 'control-plane-process.ts'), work, HOST], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, LOG_LEVEL: 'warn' },
    });
    children.push(cpProcess);
    const cp = await controlPlaneInfo(cpProcess);
    const { adminHeaders, agentKey: key } = await seedDemoControlPlane(cp);
    let policy = { version: 1, recorded: CALIBRATE ? undefined : recordedIn(0).recorded };
    policy.version = await putBenchPolicy(cp, join(work, 'outbox'), adminHeaders, policy.recorded, policy.version);
    const agentPort = await freePort(HOST);
    const twinPort = await freePort(HOST);
    const agentDir = join(work, 'agent');
    console.log(`agent directory: ${agentDir}`);
    execFileSync('mkdir', ['-p', agentDir]);
    const agentConfig = (ports: { demo: number; twin: number }): string =>
      toYaml({
        name: 'demo-agent',
        controlPlane: { url: cp.wsUrl },
        stateDir: 'state',
        identity: { issuers: [devIssuerConfig(cp.issuer, 'data')] },
        targets: [
          { name: DEMO_TARGET, protocol: 'postgres', listen: { host: HOST, port: ports.demo }, upstream: { host: HOST, port: pg.port, database: DEMO_DATABASE }, readCredential: pg.read, writeCredential: pg.write },
          { name: TWIN_TARGET, protocol: 'postgres', listen: { host: HOST, port: ports.twin }, upstream: { host: HOST, port: pg.port, database: DEMO_DATABASE }, readCredential: pg.read, writeCredential: pg.write },
        ],
      });
    writeFileSync(join(agentDir, 'agent.yaml'), agentConfig({ demo: agentPort, twin: twinPort }));
    const agentLog = require('node:fs').openSync(join(agentDir, 'agent.log'), 'a') as number;
    // BENCH_PROFILE=DIR writes a V8 CPU profile of the agent there, and of the stack above (open them in Chrome DevTools);
    // BENCH_AGENT_FLAGS adds Node flags to the agent (e.g. --trace-gc; its output lands in the agent's log).
    // --perf-basic-prof names the agent's JavaScript functions for `perf record -a -e cpu-clock -g` run
    // around the bench: sampled in place, with recording on against off, the way 74e3d24's cause was found.
    const profile = [...(process.env.BENCH_PROFILE ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_PROFILE] : []), ...(process.env.BENCH_AGENT_FLAGS ?? '').split(' ').filter(Boolean)];
    const agent = spawn(process.execPath, [...profile, join(REPO, 'cli/bin.cjs'), 'agent', '--config', join(agentDir, 'agent.yaml')], {
      stdio: ['ignore', agentLog, agentLog],
      env: { ...process.env, TWOKEY_AGENT_KEY: key, LOG_LEVEL: 'warn' },
    });
    children.push(agent);
    const agentStarted = Date.now();
    await waitForPort(agentPort);
    // bob (dba) reads without masks: these cells measure the proxy and recording; masking has its own line below.
    const token = await mintDevToken(cp.issuer, cp.signingKey, { user: 'bob', groups: ['dba'], audience: 'data', ttlSeconds: 3600 });

    // Reference: a bare Node TCP relay with no logic at all, the floor for any proxy written in Node here.
    const relayPort = await freePort(HOST);
    const relay = spawn(process.execPath, ['-e', BARE_NODE_RELAY, String(relayPort), String(pg.port)], { stdio: 'ignore' });
    children.push(relay);
    await waitForPort(relayPort);

    const direct = `host=${HOST} port=${pg.port} dbname=${DEMO_DATABASE} user=${pg.read.user}`;
    const viaBouncer = `host=${HOST} port=${bouncerPort} dbname=${DEMO_DATABASE} user=${pg.read.user}`;
    const viaAgent = `host=${HOST} port=${agentPort} dbname=${DEMO_DATABASE} user=bob`;
    const viaTwin = `host=${HOST} port=${twinPort} dbname=${DEMO_DATABASE} user=bob`;
    const conninfoOf = (target: string): string => (target === TWIN_TARGET ? viaTwin : viaAgent);
    const viaRelay = `host=${HOST} port=${relayPort} dbname=${DEMO_DATABASE} user=${pg.read.user}`;
    const idleRssMb = currentRssMb(agent.pid as number);
    const only = process.env.BENCH_ONLY;
    const selectLines = only === 'recording' || only === 'baseline' ? [] : await largeSelects({ pg, cp, agentPid: agent.pid as number, agentPort, token, idleRssMb });
    if (only === 'selects') {
      appendResults('BENCH_ONLY=selects npm run bench:pg (the 1,000,000-row SELECTs only)', selectLines);
      return;
    }
    resetPeakRss(agent.pid as number);
    await untilAgentHasPolicy(viaAgent, token);
    /**
     * This agent against one run from another checkout (same config, same database and control plane,
     * the target the policy does not record), in pairs of cells run back to back in ABBA order: the
     * change is the median of the pairs' own (bench/paired.ts), positive when this agent is slower.
     */
    const compareWithBaseline = async (dir: string): Promise<string[]> => {
      const ports = { demo: await freePort(HOST), twin: await freePort(HOST) };
      const baselineDir = join(work, 'baseline-agent');
      execFileSync('mkdir', ['-p', baselineDir]);
      writeFileSync(join(baselineDir, 'agent.yaml'), agentConfig(ports));
      const log = require('node:fs').openSync(join(baselineDir, 'agent.log'), 'a') as number;
      const baseline = spawn(process.execPath, [join(dir, 'cli/bin.cjs'), 'agent', '--config', join(baselineDir, 'agent.yaml')], {
        stdio: ['ignore', log, log],
        env: { ...process.env, TWOKEY_AGENT_KEY: key, LOG_LEVEL: 'warn' },
      });
      children.push(baseline);
      await waitForPort(ports.demo);
      const target = recordedIn(0).unrecorded;
      const viaBaseline = `host=${HOST} port=${target === TWIN_TARGET ? ports.twin : ports.demo} dbname=${DEMO_DATABASE} user=bob`;
      await untilAgentHasPolicy(viaBaseline, token);
      const commit = (cwd: string): string => {
        try {
          return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
        } catch {
          return basename(cwd);
        }
      };
      const sides = [
        { pid: baseline.pid as number, conninfo: viaBaseline },
        { pid: agent.pid as number, conninfo: conninfoOf(target) },
      ];
      for (const mode of modes) for (const side of sides) await pgbench(side.conninfo, mode, 2, { PGPASSWORD: token }, 2);
      const cell = async (side: (typeof sides)[number], mode: string, clients: number): Promise<{ tps: number; cpuUs: number }> => {
        const before = cpuSeconds(side.pid);
        const r = await pgbench(side.conninfo, mode, clients, { PGPASSWORD: token }, OVERHEAD_CELL_SECONDS);
        return { tps: r.tps, cpuUs: ((cpuSeconds(side.pid) - before) * 1e6) / r.transactions };
      };
      const lines = [
        '',
        `Against a baseline agent (BENCH_BASELINE, ${commit(dir)}; this agent ${commit(REPO)}): ${BASELINE_ROUNDS} pairs of ${OVERHEAD_CELL_SECONDS}-s cells per row on ${target} (not recorded), ABBA order.`,
        '',
        `| mode | clients | baseline TPS (median of ${BASELINE_ROUNDS}) | this agent TPS (median) | slowdown against the baseline (median of the pairs' own) | ${CONFIDENCE * 100}% interval of that median | baseline CPU µs/txn | this agent CPU µs/txn |`,
        '|---|---|---|---|---|---|---|---|',
      ];
      for (const mode of modes) {
        for (const clients of OVERHEAD_CLIENTS) {
          const before: { tps: number; cpuUs: number }[] = [];
          const after: { tps: number; cpuUs: number }[] = [];
          for (let round = 0; round < BASELINE_ROUNDS; round++) {
            for (const which of offFirst(round) ? [0, 1] : [1, 0]) (which === 0 ? before : after).push(await cell(sides[which] as (typeof sides)[number], mode, clients));
          }
          const paired = pairedOverhead(
            before.map((c) => c.tps),
            after.map((c) => c.tps),
          );
          const percent = (f: number | undefined): string => (f === undefined ? 'n/a' : `${(f * 100).toFixed(1)}%`);
          const line = `| ${mode} | ${clients} | ${median(before.map((c) => c.tps)).toFixed(0)} | ${median(after.map((c) => c.tps)).toFixed(0)} | ${percent(paired?.median)} | ${paired?.interval ? `${percent(paired.interval[0])} to ${percent(paired.interval[1])}` : 'n/a'} | ${median(before.map((c) => c.cpuUs)).toFixed(1)} | ${median(after.map((c) => c.cpuUs)).toFixed(1)} |`;
          console.log(line);
          lines.push(line);
        }
      }
      baseline.kill('SIGTERM');
      return lines;
    };
    // BENCH_MODES=none skips the pgbench cells (the SELECT measurements still run).
    const modes = (process.env.BENCH_MODES ?? 'simple,prepared').split(',').filter((m) => m && m !== 'none');
    // Warm-up, so that every column is measured in steady state (JIT, connection caches).
    for (const mode of ['simple', 'prepared']) {
      await pgbench(direct, mode, 2, { PGPASSWORD: pg.read.password }, 2);
      await pgbench(viaAgent, mode, 2, { PGPASSWORD: token }, 2);
      await pgbench(viaTwin, mode, 2, { PGPASSWORD: token }, 2);
      await pgbench(viaRelay, mode, 2, { PGPASSWORD: pg.read.password }, 2);
    }
    const baselineLines = BASELINE_DIR ? await compareWithBaseline(BASELINE_DIR) : [];
    if (only === 'baseline') {
      appendResults(`BENCH_ONLY=baseline npm run bench:pg, against a baseline agent (${cpus().length} cores)`, baselineLines);
      return;
    }
    const rows: string[] = [];
    const table: string[] = [
      '| mode | clients | direct TPS | pgbouncer TPS | bare Node relay TPS | agent TPS | agent/direct | agent/pgbouncer | agent/relay | direct lat ms | agent lat ms | added ms |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ];
    const clientCounts = (process.env.BENCH_CLIENTS ?? '1,8').split(',').map(Number);
    for (const mode of only === 'recording' ? [] : modes) {
      for (const clients of clientCounts) {
        const d = await pgbench(direct, mode, clients, { PGPASSWORD: pg.read.password });
        const b = await pgbench(viaBouncer, mode, clients, {});
        const r = await pgbench(viaRelay, mode, clients, { PGPASSWORD: pg.read.password });
        const a = await pgbench(viaAgent, mode, clients, { PGPASSWORD: token });
        const line = `| ${mode} | ${clients} | ${d.tps.toFixed(0)} | ${b.tps.toFixed(0)} | ${r.tps.toFixed(0)} | ${a.tps.toFixed(0)} | ${(a.tps / d.tps).toFixed(2)} | ${(a.tps / b.tps).toFixed(2)} | ${(a.tps / r.tps).toFixed(2)} | ${d.latencyMs.toFixed(3)} | ${a.latencyMs.toFixed(3)} | ${(a.latencyMs - d.latencyMs).toFixed(3)} |`;
        table.push(line);
        console.log(line);
      }
    }
    // Recording overhead: the same agent through its unrecorded and its recorded target, in OVERHEAD_ROUNDS
    // pairs of cells (off-on, then on-off: see bench/paired.ts); the overhead is the median of the pairs' own.
    // Each cell's time and target, to check afterwards that the one was recorded and the other not (see recordedCheck).
    const cells: OverheadCell[] = [];
    const calibration = 'Calibration (BENCH_CALIBRATE=1): both targets had recording off; the overhead column is what the method reads when there is nothing to find.';
    if (CALIBRATE) console.log(calibration);
    const overhead: string[] = [
      '',
      ...(CALIBRATE ? [calibration, ''] : []),
      `Recording overhead: ${OVERHEAD_ROUNDS} pairs of ${OVERHEAD_CELL_SECONDS}-s cells, an unrecorded target (off) against a recorded one (on) on the same agent, ${OVERHEAD_BLOCKS === 1 ? `${recordedIn(0).recorded} recorded` : `in ${OVERHEAD_BLOCKS} blocks recording ${recordedIn(0).recorded} and ${recordedIn(1).recorded} in turn`}; the local control plane ${PAUSE_CONTROL_PLANE ? 'paused during each cell (AWS when deployed)' : 'running during the cells (BENCH_CONTROL_PLANE=run)'}.`,
      '',
      `| mode | clients | agent TPS, recording off (median of ${OVERHEAD_ROUNDS}) | agent TPS, recording on (median of ${OVERHEAD_ROUNDS}) | recording overhead (median of the ${OVERHEAD_ROUNDS} pairs' own) | ${CONFIDENCE * 100}% interval of that median | middle half of the pairs | agent CPU µs/txn off | agent CPU µs/txn on |`,
      '|---|---|---|---|---|---|---|---|---|',
    ];
    // One cell: TPS, and the agent's CPU time (all threads) per transaction.
    type Roles = ReturnType<typeof recordedIn>;
    const overheadCell = async (mode: string, clients: number, roles: Roles, recordedTarget: boolean): Promise<{ tps: number; cpuUs: number }> => {
      const from = new Date().toISOString();
      const cell: OverheadCell = { from, to: from, target: recordedTarget ? roles.recorded : roles.unrecorded, recorded: recordedTarget && !CALIBRATE, clients };
      try {
        return await measureCell(cell, mode);
      } finally {
        cell.to = new Date().toISOString();
        cells.push(cell);
        // The recorded sessions' ends (last chunks sealed, shipped, the manifest written) finish here,
        // not in the next cell, where they would count against whichever side runs next.
        if (cell.recorded) await settle(cp.httpUrl, adminHeaders, cell);
      }
    };
    const cpPid = cpProcess.pid as number;
    // Between blocks: the policy records the other target, and short probes of both show when the agent has it.
    const recordInTurn = async (roles: Roles): Promise<void> => {
      if (CALIBRATE || policy.recorded === roles.recorded) return;
      policy = { version: await putBenchPolicy(cp, join(work, 'outbox'), adminHeaders, roles.recorded, policy.version), recorded: roles.recorded };
      const deadline = Date.now() + POLICY_SWITCH_TIMEOUT_MS;
      for (;;) {
        let asSet = true;
        for (const [target, recorded] of [[roles.recorded, true], [roles.unrecorded, false]] as const) {
          const probe: OverheadCell = { from: new Date().toISOString(), to: '', target, recorded, clients: 1 };
          await pgbench(conninfoOf(target), 'simple', 1, { PGPASSWORD: token }, PROBE_SECONDS);
          probe.to = new Date().toISOString();
          const sessions = await sessionsOfCell(cp.httpUrl, adminHeaders, probe);
          if (recorded !== sessions.length > 0) asSet = false;
          else if (recorded) await settle(cp.httpUrl, adminHeaders, probe);
        }
        if (asSet) return;
        if (Date.now() > deadline) throw new Error(`the agent did not record ${roles.recorded} (and not ${roles.unrecorded}) within ${POLICY_SWITCH_TIMEOUT_MS} ms of the policy change`);
      }
    };
    const measureCell = async (cell: OverheadCell, mode: string): Promise<{ tps: number; cpuUs: number }> => {
      const conninfo = conninfoOf(cell.target);
      if (!PAUSE_CONTROL_PLANE) return measureCellNow(conninfo, mode, cell.clients);
      for (let attempt = 1; ; attempt++) {
        // A cell run again counts from its last run (its sessions are checked over that time).
        cell.from = new Date().toISOString();
        process.kill(cpPid, 'SIGSTOP');
        let resumedEarly = false;
        const watchdog = setTimeout(() => {
          resumedEarly = true;
          process.kill(cpPid, 'SIGCONT');
        }, OVERHEAD_CELL_SECONDS * 1000 + PAUSE_MARGIN_MS);
        let result: { tps: number; cpuUs: number } | undefined;
        let failure: unknown;
        try {
          result = await measureCellNow(conninfo, mode, cell.clients);
        } catch (e) {
          failure = e;
        } finally {
          clearTimeout(watchdog);
          process.kill(cpPid, 'SIGCONT');
        }
        if (result && !resumedEarly) return result;
        // A connection waited for the control plane (the agent refreshing its JWKS, every 10 minutes):
        // the cell ran short, or pgbench's time ran out before it connected (no transactions at all).
        if (attempt >= PAUSED_CELL_ATTEMPTS) throw failure ?? new Error('a cell kept waiting for the paused control plane');
        console.log('a cell waited for the paused control plane; running it again');
      }
    };
    const measureCellNow = async (conninfo: string, mode: string, clients: number): Promise<{ tps: number; cpuUs: number }> => {
      const before = cpuSeconds(agent.pid as number);
      const cellStart = Date.now() - agentStarted;
      const [machineBefore, selfBefore] = [machineBusySeconds(), process.cpuUsage()];
      const processesBefore = process.env.BENCH_VERBOSE ? cpuByProcessName() : undefined;
      const switchesBefore = process.env.BENCH_VERBOSE ? contextSwitches(agent.pid as number) : undefined;
      const mainBefore = process.env.BENCH_VERBOSE ? mainThreadCpuSeconds(agent.pid as number) : { user: 0, system: 0 };
      const result = await pgbench(conninfo, mode, clients, { PGPASSWORD: token }, OVERHEAD_CELL_SECONDS, OVERHEAD_RATE);
      const self = process.cpuUsage(selfBefore);
      const cpuUs = ((cpuSeconds(agent.pid as number) - before) * 1e6) / result.transactions;
      if (process.env.BENCH_VERBOSE) {
        const switches = contextSwitches(agent.pid as number);
        const main = mainThreadCpuSeconds(agent.pid as number);
        const perTxn = (n: number, digits: number): string => (n / result.transactions).toFixed(digits);
        const usPerTxn = (seconds: number): string => perTxn(seconds * 1e6, 1);
        console.log(
          `cell ${mode} ${clients} [${cellStart}-${Date.now() - agentStarted} ms]: ${result.tps.toFixed(0)} TPS; per txn µs: agent ${cpuUs.toFixed(1)}, machine ${usPerTxn(machineBusySeconds() - machineBefore)}, bench process ${perTxn(self.user + self.system, 1)}; agent's main thread ${usPerTxn(main.user + main.system - mainBefore.user - mainBefore.system)} (user ${usPerTxn(main.user - mainBefore.user)}, kernel ${usPerTxn(main.system - mainBefore.system)}); agent context switches per txn: waited ${perTxn(switches.voluntary - (switchesBefore?.voluntary ?? 0), 2)}, preempted ${perTxn(switches.preempted - (switchesBefore?.preempted ?? 0), 2)}; by process: ${topCpu(processesBefore ?? new Map(), cpuByProcessName(), result.transactions)}`,
        );
      }
      return { tps: result.tps, cpuUs };
    };
    for (const mode of modes) for (const clients of OVERHEAD_CLIENTS) {
      const off: { tps: number; cpuUs: number }[] = [];
      const on: { tps: number; cpuUs: number }[] = [];
      for (let block = 0; block < OVERHEAD_BLOCKS; block++) {
        const roles = recordedIn(block);
        await recordInTurn(roles);
        const runOff = async (): Promise<void> => {
          if (process.env.BENCH_SIDE !== 'on') off.push(await overheadCell(mode, clients, roles, false));
        };
        const runOn = async (): Promise<void> => {
          if (process.env.BENCH_SIDE !== 'off') on.push(await overheadCell(mode, clients, roles, true));
        };
        const [first, end] = [Math.round((block * OVERHEAD_ROUNDS) / OVERHEAD_BLOCKS), Math.round(((block + 1) * OVERHEAD_ROUNDS) / OVERHEAD_BLOCKS)];
        for (let round = first; round < end; round++) {
          if (offFirst(round)) {
            await runOff();
            await runOn();
          } else {
            await runOn();
            await runOff();
          }
        }
      }
      const [offTps, onTps] = [median(off.map((c) => c.tps)), median(on.map((c) => c.tps))];
      const [offCpu, onCpu] = [median(off.map((c) => c.cpuUs)), median(on.map((c) => c.cpuUs))];
      const paired = pairedOverhead(
        off.map((c) => c.tps),
        on.map((c) => c.tps),
      );
      const percent = (f: number | undefined): string => (f === undefined ? 'n/a' : `${(f * 100).toFixed(1)}%`);
      const interval = paired?.interval ? `${percent(paired.interval[0])} to ${percent(paired.interval[1])}` : 'n/a';
      const line = `| ${mode} | ${clients} | ${offTps.toFixed(0)} | ${onTps.toFixed(0)} | ${percent(paired?.median)} | ${interval} | ${percent(paired?.q1)} to ${percent(paired?.q3)} | ${offCpu.toFixed(1)} | ${onCpu.toFixed(1)} |`;
      overhead.push(line);
      console.log(line);
    }
    const check = await recordedCheck(cp.httpUrl, adminHeaders, cells);
    console.log(check);
    const pgbenchRss = `agent peak RSS over the pgbench cells (8 recorded sessions at a time): ${peakRssMb(agent.pid as number).toFixed(0)} MB`;
    console.log(pgbenchRss);
    rows.push(...table, ...overhead, '', check, ...baselineLines, ...selectLines, '', pgbenchRss);
    appendResults(`npm run bench:pg (pgbench -S, ${PGBENCH_SECONDS} s per cell, scale ${PGBENCH_SCALE}; ${cpus().length} cores${CALIBRATE ? '; calibration: recording off on both sides' : ''})`, rows);
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    await pg.stop();
    removeWork();
  }
}

interface OverheadCell {
  from: string;
  to: string;
  target: string;
  /** Whether its sessions should be in the sessions table (not in calibration, nor for the unrecorded target). */
  recorded: boolean;
  clients: number;
}

/**
 * The demo policy with demo-pg's twin beside it (the same rules reach it) and recording off but on
 * `recorded` (undefined: off on both, as in calibration). First put before the agent starts, so it
 * serves by it from hello. Returns the policy's new version, once the second demo admin approved it.
 */
async function putBenchPolicy(cp: { httpUrl: string; issuer: string }, outboxDir: string, headers: Record<string, string>, recorded: string | undefined, version: number): Promise<number> {
  type Doc = { targets: { name: string; recording?: { mode: string } }[]; rules: { targets: string[] }[] };
  const doc = fromYaml(withDevIssuer(readFileSync(join(REPO, 'examples/dev/policy.yaml'), 'utf8'), cp.issuer)) as Doc;
  const demo = doc.targets.find((t) => t.name === DEMO_TARGET);
  if (!demo) throw new Error('examples/dev/policy.yaml has no demo-pg target');
  const twin: Doc['targets'][number] = { ...demo, name: TWIN_TARGET };
  doc.targets.push(twin);
  for (const t of [demo, twin]) if (t.name !== recorded) t.recording = { mode: 'off' };
  for (const rule of doc.rules) if (rule.targets.includes(DEMO_TARGET)) rule.targets.push(TWIN_TARGET);
  const res = await fetch(`${cp.httpUrl}/policies`, { method: 'PUT', headers: { ...headers, 'if-match': `"${version}"` }, body: toYaml(doc) });
  if (res.status !== 202) throw new Error(`PUT /policies: HTTP ${res.status} ${await res.text()}`);
  // A change waits for a second admin: grace approves it through the link mailed to the local outbox.
  const { requestId } = (await res.json()) as { requestId: string };
  const mail = await waitForMail(outboxDir, 'grace@example.com', requestId);
  const decided = await postDecision(mail.link, mail.token, 'approve');
  if (decided.status !== 200) throw new Error(`approving the bench policy: HTTP ${decided.status}`);
  for (const deadline = Date.now() + POLICY_SWITCH_TIMEOUT_MS; Date.now() < deadline; await new Promise((r) => setTimeout(r, SETTLE_POLL_MS))) {
    const current = (await (await fetch(`${cp.httpUrl}/policies`, { headers })).json()) as { version: number };
    if (current.version === version + 1) return current.version;
  }
  throw new Error(`the approved bench policy did not become version ${version + 1}`);
}

async function sessionsOfCell(httpUrl: string, headers: Record<string, string>, c: OverheadCell): Promise<{ status: string }[]> {
  const res = await fetch(`${httpUrl}/sessions?target=${c.target}&from=${encodeURIComponent(c.from)}&to=${encodeURIComponent(c.to)}`, { headers });
  if (!res.ok) throw new Error(`GET /sessions: HTTP ${res.status}`);
  return ((await res.json()) as { sessions: { status: string }[] }).sessions;
}

/** Waits (bounded) until a recorded cell's sessions are all in the table and no longer live. */
async function settle(httpUrl: string, headers: Record<string, string>, c: OverheadCell): Promise<void> {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const sessions = await sessionsOfCell(httpUrl, headers, c);
    if (sessions.length >= c.clients && sessions.every((x) => x.status !== 'live')) return;
    await new Promise((r) => setTimeout(r, SETTLE_POLL_MS));
  }
  console.log(`a recorded ${c.clients}-client cell's sessions were not all ended after ${SETTLE_TIMEOUT_MS} ms; the next cell shares their work`);
}

/**
 * That each recorded cell's pgbench sessions are in the sessions table and no unrecorded cell's (nor,
 * in calibration, any): a cell recorded by mistake would spoil the comparison without a trace in the TPS.
 */
async function recordedCheck(httpUrl: string, headers: Record<string, string>, cells: readonly OverheadCell[]): Promise<string> {
  const counts: number[] = [];
  for (const c of cells) counts.push((await sessionsOfCell(httpUrl, headers, c)).length);
  const wrong = cells.filter((c, i) => (c.recorded ? (counts[i] ?? 0) < c.clients : (counts[i] ?? 0) > 0)).length;
  const ranges = [DEMO_TARGET, TWIN_TARGET].flatMap((target) =>
    [true, false].flatMap((recorded) => {
      const of = counts.filter((_, i) => cells[i]?.target === target && cells[i]?.recorded === recorded);
      return of.length === 0 ? [] : [`${target} ${recorded ? 'recorded' : 'unrecorded'} ${Math.min(...of)} to ${Math.max(...of)}`];
    }),
  );
  return `sessions recorded per overhead cell (${cells.length} cells): ${ranges.join('; ')}${wrong ? ` (${wrong} cell(s) not recorded as set: these results are not valid)` : ' (as set)'}`;
}

runBench(main);
