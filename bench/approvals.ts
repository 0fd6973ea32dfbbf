/**
 * `npm run bench:approvals`: latency of the approval path on this machine, 20 runs:
 * (write sent -> email in the outbox) and (approve POST -> result at the caller). p50 and p95,
 * appended to bench/RESULTS.md. Never part of `npm test`.
 */
import { chmodSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { startAgent } from '../agent/agent';
import { startPostgresListener } from '../agent/postgres/listener';
import { startLocalControlPlane } from '../local/control-plane';
import { DEMO_DATABASE, startDemoPostgres } from '../local/demo/postgres';
import { freePort } from '../local/free-port';
import { devIssuerConfig, mintDevToken } from '../local/oidc/dev-issuer';
import { appendResults, benchWorkDir, runBench, seedDemoControlPlane } from './results';
import { percentile } from './stats';

const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const HOST = '127.0.0.1';
const POLL_MS = 2;

async function waitForNewMail(dir: string, seen: Set<string>): Promise<string> {
  for (;;) {
    const fresh = readdirSync(dir).find((f) => f.includes('bob@example.com') && !seen.has(f));
    if (fresh) {
      seen.add(fresh);
      return readFileSync(join(dir, fresh), 'utf8');
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

async function main(): Promise<void> {
  const { dir: work, remove: removeWork } = benchWorkDir('tk-bench-approvals-');
  chmodSync(work, 0o755);
  const quiet = { info: () => undefined, warn: () => undefined, error: (e: string, f?: unknown) => console.error(e, f) };
  process.env.LOG_LEVEL = 'warn';
  const db = await startDemoPostgres({ dir: join(work, 'pg'), host: HOST, port: await freePort(HOST), log: () => undefined });
  const outboxDir = join(work, 'outbox');
  const cp = await startLocalControlPlane({ dataDir: undefined, s3Dir: join(work, 's3'), outboxDir, host: HOST, ports: { http: 0, dynamo: 0, s3: 0 }, log: () => undefined });
  try {
    process.env.BENCH_AGENT_KEY = (await seedDemoControlPlane(cp)).agentKey;
    const agent = await startAgent(
      {
        name: 'demo-agent',
        controlPlane: { url: cp.wsUrl, keyEnv: 'BENCH_AGENT_KEY' },
        stateDir: join(work, 'agent'),
        identity: { issuers: [devIssuerConfig(cp.issuer, 'data')] },
        targets: [{ name: 'demo-pg', protocol: 'postgres', listen: { host: HOST, port: 0 }, upstream: { host: HOST, port: db.port, database: DEMO_DATABASE }, readCredential: db.read, writeCredential: db.write }],
      },
      { listenerFactories: { postgres: (t, c) => startPostgresListener(t, c) }, log: quiet },
    );
    while (!agent.policy.policy) await new Promise((r) => setTimeout(r, 20));
    const [host, port] = (agent.listeners[0]?.endpoint ?? '').split(':');
    const client = new pg.Client({ host, port: Number(port), database: DEMO_DATABASE, user: 'alice', password: await mintDevToken(cp.issuer, cp.signingKey, { user: 'alice', groups: ['support'], audience: 'data' }) });
    await client.connect();
    const seen = new Set<string>();
    const toMail: number[] = [];
    const toResult: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const sent = performance.now();
      const running = client.query(`UPDATE orders SET status = 'bench-${i}' WHERE id = ${i + 1}`);
      const mail = await waitForNewMail(outboxDir, seen);
      toMail.push(performance.now() - sent);
      const link = /(http:\/\/\S+\/approvals\/review\?t=\S+)/.exec(mail)?.[1] ?? '';
      const token = decodeURIComponent(new URL(link).searchParams.get('t') ?? '');
      const posted = performance.now();
      await fetch(link.split('?')[0] ?? link, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ t: token, decision: 'approve' }).toString() });
      const result = await running;
      toResult.push(performance.now() - posted);
      if (result.rowCount !== 1) throw new Error('the approved UPDATE did not run');
    }
    await client.end();
    await agent.stop();
    const fmt = (v: number): string => `${v.toFixed(0)} ms`;
    const lines = [
      `| path | p50 | p95 | target (p50) |`,
      `|---|---|---|---|`,
      `| write sent -> email in the outbox | ${fmt(percentile(toMail, 50))} | ${fmt(percentile(toMail, 95))} | ≤ 1000 ms |`,
      `| approve POST -> result at the caller | ${fmt(percentile(toResult, 50))} | ${fmt(percentile(toResult, 95))} | ≤ 1000 ms |`,
    ];
    console.log(lines.join('\n'));
    appendResults(`npm run bench:approvals (${RUNS} runs, local stack)`, lines);
  } finally {
    await cp.stop();
    await db.stop();
    removeWork();
  }
}

runBench(main);
