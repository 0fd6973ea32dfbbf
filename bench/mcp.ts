/**
 * `npm run bench:mcp`: a 1,000-row masked SELECT through the agent's MCP endpoint (the official SDK
 * client, Streamable HTTP, one `query` tool call each) against the same SELECT through psql on the
 * agent's Postgres endpoint, in alternating rounds: p50 and p95 of each and the p50 added by MCP; the
 * agent's RSS idle and at its peak over the MCP calls. The agent runs as `twokey agent` (the bundle).
 * Appends to bench/RESULTS.md. Never part of `npm test`.
 */
import { spawn, execFile } from 'node:child_process';
import { chmodSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { MCP_ENDPOINT_FILE } from '../agent/config';
import { startLocalControlPlane } from '../local/control-plane';
import { DEMO_DATABASE, startDemoPostgres } from '../local/demo/postgres';
import { freePort } from '../local/free-port';
import { devIssuerConfig, mintDevToken } from '../local/oidc/dev-issuer';
import { currentRssMb, peakRssMb } from './processes';
import { appendResults, benchWorkDir, runBench, seedDemoControlPlane } from './results';
import { percentile } from './stats';

const RUNS = Number(process.env.BENCH_RUNS ?? 40);
const HOST = '127.0.0.1';
const REPO = join(__dirname, '..');
const SQL = 'SELECT * FROM customers ORDER BY id LIMIT 1000';
const AGENT_READY_TIMEOUT_MS = 60_000;


/** psql's own `\timing` of each statement in one session (no process start or connection in it). */
function psqlTimings(endpoint: string, token: string, runs: number): Promise<number[]> {
  const [host, port] = endpoint.split(':');
  const commands = ['\\timing on', ...Array.from({ length: runs }, () => SQL)].flatMap((c) => ['-c', c]);
  return new Promise((resolve, reject) =>
    execFile('psql', [`host=${host} port=${port} dbname=${DEMO_DATABASE} user=alice`, '-X', '-A', '-q', ...commands], { env: { ...process.env, PGPASSWORD: token }, maxBuffer: 256 * 1024 * 1024 }, (e, stdout, stderr) => {
      if (e) return reject(new Error(`psql failed: ${stderr}`));
      const times = [...stdout.matchAll(/^Time: ([\d.]+) ms/gm)].map((m) => Number(m[1]));
      if (times.length !== runs || !stdout.includes('(1000 rows)')) return reject(new Error(`psql gave ${times.length} timings`));
      resolve(times);
    }),
  );
}

/** psql started for one statement: process start, connection (token check, upstream connection) and the statement. */
function psqlOnce(endpoint: string, token: string): Promise<number> {
  const [host, port] = endpoint.split(':');
  const started = performance.now();
  return new Promise((resolve, reject) =>
    execFile('psql', [`host=${host} port=${port} dbname=${DEMO_DATABASE} user=alice`, '-X', '-A', '-c', SQL], { env: { ...process.env, PGPASSWORD: token }, maxBuffer: 64 * 1024 * 1024 }, (e, stdout) =>
      e || !stdout.includes('(1000 rows)') ? reject(e ?? new Error('psql returned no rows')) : resolve(performance.now() - started),
    ),
  );
}

async function mcpCall(client: Client): Promise<number> {
  const started = performance.now();
  const r = await client.callTool({ name: 'query', arguments: { target: 'demo-pg', sql: SQL } });
  const took = performance.now() - started;
  const text = (r.content as { text: string }[])[0]?.text ?? '';
  if (r.isError || (JSON.parse(text) as { rows: unknown[] }).rows.length !== 1000) throw new Error(`the MCP query failed: ${text.slice(0, 200)}`);
  return took;
}

async function waitForFile(file: string): Promise<string> {
  const deadline = Date.now() + AGENT_READY_TIMEOUT_MS;
  while (!existsSync(file)) {
    if (Date.now() > deadline) throw new Error(`the agent did not write ${file}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return readFileSync(file, 'utf8');
}

async function main(): Promise<void> {
  const { dir: work, remove } = benchWorkDir('tk-bench-mcp-');
  // The database runs as the postgres user, who must reach its directory inside.
  chmodSync(work, 0o755);
  process.env.LOG_LEVEL = 'warn';
  const db = await startDemoPostgres({ dir: join(work, 'pg'), host: HOST, port: await freePort(HOST), log: () => undefined });
  const cp = await startLocalControlPlane({ dataDir: undefined, s3Dir: join(work, 's3'), outboxDir: join(work, 'outbox'), host: HOST, ports: { http: 0, dynamo: 0, s3: 0 }, log: () => undefined });
  let agent: ReturnType<typeof spawn> | undefined;
  try {
    const { agentKey } = await seedDemoControlPlane(cp);
    const stateDir = join(work, 'agent');
    writeFileSync(
      join(work, 'agent.yaml'),
      toYaml({
        name: 'demo-agent',
        controlPlane: { url: cp.wsUrl },
        stateDir,
        identity: { issuers: [devIssuerConfig(cp.issuer, 'data')] },
        targets: [{ name: 'demo-pg', protocol: 'postgres', listen: { host: HOST, port: 0 }, upstream: { host: HOST, port: db.port, database: DEMO_DATABASE }, readCredential: db.read, writeCredential: db.write }],
        mcp: { listen: { host: HOST, port: 0 } },
      }),
    );
    agent = spawn(process.execPath, [join(REPO, 'cli/bin.cjs'), 'agent', '--config', join(work, 'agent.yaml')], { stdio: ['ignore', openSync(join(work, 'agent.log'), 'a'), 'inherit'], env: { ...process.env, TWOKEY_AGENT_KEY: agentKey, LOG_LEVEL: 'warn' } });
    const pid = agent.pid as number;
    const pgEndpoint = (JSON.parse(await waitForFile(join(stateDir, 'endpoints.json'))) as Record<string, string>)['demo-pg'] as string;
    const mcpEndpoint = (JSON.parse(readFileSync(join(stateDir, MCP_ENDPOINT_FILE), 'utf8')) as { endpoint: string }).endpoint;
    // alice (support) has three masked columns on customers: both sides mask the same rows.
    const token = await mintDevToken(cp.issuer, cp.signingKey, { user: 'alice', groups: ['support'], audience: 'data', ttlSeconds: 3600 });
    const client = new Client({ name: 'bench', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`http://${mcpEndpoint}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
    // The policy arrives over the tunnel after start-up: wait until a call goes through, then warm both paths.
    for (let i = 0; ; i++) {
      const ok = await mcpCall(client).then(() => true, () => false);
      if (ok) break;
      if (i > 200) throw new Error('the agent never answered a query');
      await new Promise((r) => setTimeout(r, 100));
    }
    for (let i = 0; i < 5; i++) await mcpCall(client);
    await psqlTimings(pgEndpoint, token, 5);
    const idleRss = currentRssMb(pid);
    writeFileSync(`/proc/${pid}/clear_refs`, '5');

    const viaMcp: number[] = [];
    const viaPsql: number[] = [];
    const viaPsqlFresh: number[] = [];
    // Rounds alternate the sides so that the machine's drift over the run falls on both alike.
    const ROUND = 10;
    for (let done = 0; done < RUNS; done += ROUND) {
      const n = Math.min(ROUND, RUNS - done);
      const mcpFirst = (done / ROUND) % 2 === 0;
      const mcpRound = async (): Promise<void> => {
        for (let i = 0; i < n; i++) viaMcp.push(await mcpCall(client));
      };
      const psqlRound = async (): Promise<void> => {
        viaPsql.push(...(await psqlTimings(pgEndpoint, token, n)));
        for (let i = 0; i < n; i++) viaPsqlFresh.push(await psqlOnce(pgEndpoint, token));
      };
      if (mcpFirst) await mcpRound().then(psqlRound);
      else await psqlRound().then(mcpRound);
    }
    const peakRss = peakRssMb(pid);
    await (client.transport as StreamableHTTPClientTransport).terminateSession();
    await client.close();

    const ms = (v: number): string => v.toFixed(1);
    const lines = [
      `\`${SQL}\` as alice (3 masked columns), ${RUNS} runs each, alternating rounds of ${ROUND}:`,
      '',
      '| path | p50 ms | p95 ms |',
      '|---|---|---|',
      `| MCP \`query\` tool call (SDK client, Streamable HTTP; the MCP session's kept connection to the listener) | ${ms(percentile(viaMcp, 50))} | ${ms(percentile(viaMcp, 95))} |`,
      `| psql in one session (its \`\\timing\` of the statement) | ${ms(percentile(viaPsql, 50))} | ${ms(percentile(viaPsql, 95))} |`,
      `| psql started per statement (process, connection, statement) | ${ms(percentile(viaPsqlFresh, 50))} | ${ms(percentile(viaPsqlFresh, 95))} |`,
      '',
      `added by MCP at p50: ${ms(percentile(viaMcp, 50) - percentile(viaPsql, 50))} ms over psql's statement in a session (${(percentile(viaMcp, 50) / percentile(viaPsql, 50)).toFixed(2)}x); ${ms(percentile(viaMcp, 50) - percentile(viaPsqlFresh, 50))} ms over psql started per statement (${(percentile(viaMcp, 50) / percentile(viaPsqlFresh, 50)).toFixed(2)}x)`,
      '',
      `agent RSS: ${idleRss.toFixed(0)} MB after warm-up, peak ${peakRss.toFixed(0)} MB over the runs`,
    ];
    console.log(lines.join('\n'));
    appendResults(`npm run bench:mcp (${RUNS} runs)`, lines);
  } finally {
    agent?.kill('SIGTERM');
    await cp.stop();
    await db.stop();
    remove();
  }
}

runBench(main);
