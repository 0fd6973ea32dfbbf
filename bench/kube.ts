/**
 * `npm run bench:kube`: kubectl and raw API clients straight at the Kubernetes API stand-in (the test
 * fixture; no real cluster runs here) and through the agent, in one run: `kubectl get pods` latency
 * (p50 of BENCH_KUBECTL_RUNS each, alternating), a watch of BENCH_WATCH_EVENTS events with the agent's
 * peak RSS, and a BENCH_LOG_MB MB `logs` stream read BENCH_LOG_ROUNDS times (unmasked for an analyst, through the detectors for
 * support). The agent runs as `twokey agent` in its own process (its RSS is its own). Prints ratios and
 * appends the results to bench/RESULTS.md. Never part of `npm test`.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { request, type RequestOptions } from 'node:https';
import { join, resolve } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { startLocalControlPlane } from '../local/control-plane';
import { devIssuerConfig, mintDevToken } from '../local/oidc/dev-issuer';
import { startKubeFixture } from '../tests/support/kube-fixture';
import { cpuSeconds, currentRssMb, peakRssMb, resetPeakRss } from './processes';
import { appendResults, benchWorkDir, runBench, seedDemoControlPlane } from './results';
import { median } from './stats';

const HOST = '127.0.0.1';
/** The kubectl measured (KUBECTL overrides the one on PATH, as in the tests). */
const KUBECTL = process.env.KUBECTL ?? 'kubectl';
const REPO = resolve(__dirname, '..');
const KUBECTL_RUNS = Number(process.env.BENCH_KUBECTL_RUNS ?? 50);
const WATCH_EVENTS = Number(process.env.BENCH_WATCH_EVENTS ?? 10_000);
const LOG_MB = Number(process.env.BENCH_LOG_MB ?? 100);
/** Rounds of the three log reads (direct, unmasked, masked), each round in a rotated order. */
const LOG_ROUNDS = Number(process.env.BENCH_LOG_ROUNDS ?? 5);
/** Extra node flags for the agent's process (e.g. `--cpu-prof --cpu-prof-dir=DIR` to profile it). */
/** The log reads made (a subset, e.g. `direct,unmasked`, to profile one path). */
const LOG_READERS = (process.env.BENCH_LOG_READERS ?? 'direct,unmasked,masked').split(',');
const AGENT_NODE_ARGS = (process.env.BENCH_AGENT_NODE_ARGS ?? '').split(' ').filter(Boolean);
/** A log line of this many bytes (with its newline); the fixture keeps 100,000 lines per container. */
const LOG_LINE_BYTES = 1024;
const AGENT_READY_MS = 60_000;

/** A ratio's median over the rounds and its range (with 5 rounds, the range holds the median with 94% confidence). */
const spread = (xs: number[]): string => `${median(xs).toFixed(2)}x (rounds ${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)})`;

interface Endpoint {
  readonly url: string;
  readonly caFile: string;
  readonly ca: string;
  readonly token: string;
}

/** One kubectl run: its wall time, and the time its HTTP requests took as kubectl itself logs them (-v=6). */
function kubectlOnce(e: Endpoint, args: string[], home: string): Promise<{ wallMs: number; requestMs: number }> {
  const started = performance.now();
  return new Promise((resolvePromise, reject) => {
    execFile(KUBECTL, [`--server=${e.url}`, `--certificate-authority=${e.caFile}`, `--token=${e.token}`, '-v=6', ...args], { env: { ...process.env, KUBECONFIG: '/dev/null', HOME: home } }, (error, _out, err) => {
      if (error) return reject(error);
      const requestMs = [...err.matchAll(/ in (\d+) milliseconds/g)].reduce((sum, m) => sum + Number(m[1]), 0);
      resolvePromise({ wallMs: performance.now() - started, requestMs });
    });
  });
}

/** A GET whose body is consumed as it comes: `onChunk` sees every chunk; resolves with the bytes and seconds when it ends or `stop` says so. */
function stream(e: Endpoint, path: string, onChunk: (chunk: Buffer) => boolean): Promise<{ bytes: number; seconds: number }> {
  const url = new URL(e.url);
  const options: RequestOptions = { hostname: url.hostname, port: url.port, path, ca: e.ca, headers: { authorization: `Bearer ${e.token}`, accept: 'application/json' } };
  const started = performance.now();
  return new Promise((resolvePromise, reject) => {
    const req = request(options, (res) => {
      if (res.statusCode !== 200) reject(new Error(`${path}: HTTP ${res.statusCode ?? 0}`));
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        if (onChunk(c)) {
          resolvePromise({ bytes, seconds: (performance.now() - started) / 1000 });
          req.destroy();
        }
      });
      res.once('end', () => resolvePromise({ bytes, seconds: (performance.now() - started) / 1000 }));
    });
    req.once('error', reject);
    req.end();
  });
}

/** A log line like an access log's, LOG_LINE_BYTES long, with an address the detectors find. */
function logLine(i: number): string {
  let line = `2026-12-07T22:00:${String(i % 60).padStart(2, '0')}.${String(i % 1000).padStart(3, '0')}Z INFO request id=${i * 7919} GET /api/orders/${i} status=200 took=${i % 97}ms user=ops${i % 50}@example.com`;
  for (let k = 0; line.length < LOG_LINE_BYTES - 24; k += 1) line += ` f${k}=${(i * 31 + k * 17) % 100_003}`;
  return `${line.padEnd(LOG_LINE_BYTES - 1, ' ')}\n`;
}

async function main(): Promise<void> {
  const work = benchWorkDir('tk-bench-kube-');
  const cp = await startLocalControlPlane({ dataDir: undefined, s3Dir: join(work.dir, 's3'), outboxDir: join(work.dir, 'outbox'), host: HOST, ports: { http: 0, dynamo: 0, s3: 0 }, policyStream: true, log: () => undefined });
  const { agentKey } = await seedDemoControlPlane(cp);
  const fixture = await startKubeFixture({ tokens: { 'bench-read': { user: 'reader', access: 'read' }, 'bench-write': { user: 'writer', access: 'write' } }, bookmarkIntervalMs: 60_000 });
  writeFileSync(join(work.dir, 'fixture-ca.pem'), fixture.caPem);
  writeFileSync(join(work.dir, 'agent.key'), agentKey);
  const config = {
    name: 'demo-agent',
    controlPlane: { url: cp.wsUrl, keyFile: 'agent.key' },
    stateDir: 'state',
    identity: { issuers: [devIssuerConfig(cp.issuer, 'data')] },
    targets: [{ name: 'demo-k8s', protocol: 'kubernetes', listen: { host: HOST, port: 0 }, apiServer: fixture.url, caFile: 'fixture-ca.pem', readToken: { tokenEnv: 'BENCH_KUBE_READ' }, writeToken: { tokenEnv: 'BENCH_KUBE_WRITE' } }],
  };
  writeFileSync(join(work.dir, 'agent.yaml'), toYaml(config));
  const agent = spawn(process.execPath, [...AGENT_NODE_ARGS, join(REPO, 'cli/bin.cjs'), 'agent', '--config', join(work.dir, 'agent.yaml')], {
    env: { ...process.env, BENCH_KUBE_READ: 'bench-read', BENCH_KUBE_WRITE: 'bench-write', LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    const endpointsFile = join(work.dir, 'state', 'endpoints.json');
    const deadline = Date.now() + AGENT_READY_MS;
    while (!existsSync(endpointsFile)) {
      if (Date.now() > deadline) throw new Error('the agent did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
    // The policy arrives over the tunnel just after the listener starts.
    await new Promise((r) => setTimeout(r, 2_000));
    const startedRss = currentRssMb(agent.pid as number);
    const agentCaFile = join(work.dir, 'state', 'kubernetes', 'demo-k8s', 'cert.pem');
    const agentUrl = `https://${(JSON.parse(readFileSync(endpointsFile, 'utf8')) as Record<string, string>)['demo-k8s'] ?? ''}`;
    const token = (user: string, groups: string[]) => mintDevToken(cp.issuer, cp.signingKey, { user, groups, audience: 'data' });
    const direct: Endpoint = { url: fixture.url, caFile: join(work.dir, 'fixture-ca.pem'), ca: fixture.caPem, token: 'bench-read' };
    const viaAgent = (t: string): Endpoint => ({ url: agentUrl, caFile: agentCaFile, ca: readFileSync(agentCaFile, 'utf8'), token: t });
    const alice = viaAgent(await token('alice', ['support']));
    const dave = viaAgent(await token('dave', ['analyst']));
    const lines: string[] = [];
    const say = (line: string): void => {
      console.log(line);
      lines.push(line);
    };

    // kubectl get pods, alternating direct and agent (discovery cached after the first run of each).
    await kubectlOnce(direct, ['get', 'pods'], work.dir);
    await kubectlOnce(alice, ['get', 'pods'], work.dir);
    const directRuns: { wallMs: number; requestMs: number }[] = [];
    const agentRuns: { wallMs: number; requestMs: number }[] = [];
    for (let i = 0; i < KUBECTL_RUNS; i += 1) {
      directRuns.push(await kubectlOnce(direct, ['get', 'pods'], work.dir));
      agentRuns.push(await kubectlOnce(alice, ['get', 'pods'], work.dir));
    }
    const p50 = (runs: typeof directRuns, k: 'wallMs' | 'requestMs') => median(runs.map((r) => r[k]));
    say(
      `kubectl get pods, p50 of ${KUBECTL_RUNS} alternating runs (alice, masked): the whole kubectl run direct ${p50(directRuns, 'wallMs').toFixed(1)} ms, agent ${p50(agentRuns, 'wallMs').toFixed(1)} ms, added ${(p50(agentRuns, 'wallMs') - p50(directRuns, 'wallMs')).toFixed(1)} ms; its HTTP requests as kubectl times them (connection included) direct ${p50(directRuns, 'requestMs').toFixed(1)} ms, agent ${p50(agentRuns, 'requestMs').toFixed(1)} ms, added ${(p50(agentRuns, 'requestMs') - p50(directRuns, 'requestMs')).toFixed(1)} ms`,
    );

    // A watch of WATCH_EVENTS ConfigMaps created while it runs, through the agent (masked for alice).
    const agentPid = agent.pid as number;
    resetPeakRss(agentPid);
    let seen = 0;
    const watching = stream(alice, '/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=0', (c) => {
      for (const b of c) if (b === 0x0a) seen += 1;
      return seen >= WATCH_EVENTS;
    });
    await new Promise((r) => setTimeout(r, 500));
    seen = 0;
    for (let i = 0; i < WATCH_EVENTS; i += 1) {
      fixture.state.put({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `bench-${i}`, namespace: 'default' }, data: { owner: `user${i}@example.com`, n: String(i) } });
      if (i % 500 === 0) await new Promise((r) => setImmediate(r));
    }
    const watched = await watching;
    say(`watch of ${WATCH_EVENTS} events through the agent (alice, masked): ${seen} events, ${(watched.bytes / 1e6).toFixed(1)} MB in ${watched.seconds.toFixed(2)} s; agent peak RSS ${peakRssMb(agentPid).toFixed(0)} MB (${startedRss.toFixed(0)} MB after start-up)`);

    // A LOG_MB MB log, read whole LOG_ROUNDS times each: direct, through the agent unmasked (dave) and masked (alice).
    const total = Math.floor((LOG_MB * 1e6) / LOG_LINE_BYTES);
    for (let i = 0; i < total; i += 1000) {
      let chunk = '';
      for (let j = i; j < i + 1000; j += 1) chunk += logLine(j);
      fixture.state.appendLog('default', 'web-1', chunk);
    }
    const logPath = '/api/v1/namespaces/default/pods/web-1/log';
    const readers = { direct, unmasked: dave, masked: alice };
    const kinds = (Object.keys(readers) as (keyof typeof readers)[]).filter((k) => LOG_READERS.includes(k));
    const seconds: Record<keyof typeof readers, number[]> = { direct: [], unmasked: [], masked: [] };
    const agentCpu: Record<keyof typeof readers, number[]> = { direct: [], unmasked: [], masked: [] };
    const ratios: Record<'unmasked' | 'masked', number[]> = { unmasked: [], masked: [] };
    let bytes: Record<keyof typeof readers, number> = { direct: 0, unmasked: 0, masked: 0 };
    resetPeakRss(agentPid);
    for (let round = 0; round < LOG_ROUNDS; round += 1) {
      const took: Partial<Record<keyof typeof readers, number>> = {};
      for (let k = 0; k < kinds.length; k += 1) {
        const kind = kinds[(round + k) % kinds.length] as keyof typeof readers;
        const cpuBefore = cpuSeconds(agentPid);
        const r = await stream(readers[kind], logPath, () => false);
        agentCpu[kind].push(cpuSeconds(agentPid) - cpuBefore);
        took[kind] = r.seconds;
        seconds[kind].push(r.seconds);
        bytes = { ...bytes, [kind]: r.bytes };
      }
      ratios.unmasked.push((took.direct ?? NaN) / (took.unmasked ?? NaN));
      ratios.masked.push((took.direct ?? NaN) / (took.masked ?? NaN));
    }
    const mb = (b: number) => (b / 1e6).toFixed(0);
    const s = (kind: keyof typeof readers) => `${median(seconds[kind]).toFixed(2)} s (${(bytes[kind] / 1e6 / median(seconds[kind])).toFixed(0)} MB/s${kind === 'direct' ? '' : `, agent CPU ${median(agentCpu[kind]).toFixed(2)} s`})`;
    say(
      `${mb(bytes.direct)} MB logs, median of ${LOG_ROUNDS} rounds (direct, agent unmasked for dave, agent masked for alice; order rotated each round): direct ${s('direct')}; agent unmasked ${s('unmasked')}, ${mb(bytes.unmasked)} MB, ${spread(ratios.unmasked)} direct; agent masked (detectors) ${s('masked')}, ${mb(bytes.masked)} MB, ${spread(ratios.masked)} direct; agent peak RSS ${peakRssMb(agentPid).toFixed(0)} MB`,
    );
    appendResults('npm run bench:kube (the fixture API server upstream; kubectl 1.32)', lines);
  } finally {
    agent.kill('SIGTERM');
    await fixture.stop();
    await cp.stop();
    work.remove();
  }
}

runBench(main);
