/**
 * The recorder's own CPU per Postgres transaction, in one process and without the network, so that
 * changes to it can be compared without the noise of a shared machine: a pgbench -S-like transaction
 * (statement, one row, result) recorded TRANSACTIONS times, for simple and for prepared statements;
 * prints microseconds per transaction.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readMeta } from '../agent/recording/spool';
import { RecordingService } from '../agent/recording/recording-service';
import { pgRecorder } from '../agent/recording/pg-recorder';
import type { TunnelClient } from '../agent/tunnel/tunnel-client';
import { appendResults, benchWorkDir, runBench } from './results';

const TRANSACTIONS = 200_000;
/**
 * Results' durations in milliseconds, in turn: under load a transaction's duration changes from one to
 * the next (eight pgbench clients through the agent here: 0 to 3 ms), and the recorder must not make
 * each change cost more than the digits.
 */
const DURATIONS_MS = [0, 1, 0, 2, 1, 1, 0, 3, 1, 0, 2];
const SESSIONS = 8;
/** Distinct simple-query texts, in turn (pgbench -S draws a new aid for each transaction). */
const SIMPLE_TEXTS = 4096;
/** pgbench -M simple (a new statement text each time) and -M prepared (one statement, executed again and again). */
const PROTOCOLS = ['simple', 'prepared'] as const;
type Protocol = (typeof PROTOCOLS)[number];
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
/** A tunnel that is never connected: chunks stay in the spool (uploads are not what is measured). */
const offline = { onMessage: () => undefined, onConnected: () => undefined, connected: false, send: () => false } as unknown as TunnelClient;

function dataRow(value: string): Buffer {
  const v = Buffer.from(value);
  const b = Buffer.alloc(11 + v.length);
  b[0] = 0x44;
  b.writeInt32BE(10 + v.length, 1);
  b.writeInt16BE(1, 5);
  b.writeInt32BE(v.length, 7);
  v.copy(b, 11);
  return b;
}

/** The proxy's thread's CPU time so far, in µs (Linux: the main thread's runtime in /proc). */
function mainThreadMicros(): number {
  const [ns] = readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ');
  return Number(ns) / 1000;
}

/** Waits until every session's end reached its spool (the recorder's worker writes the lines). */
async function whenEnded(root: string, ids: string[]): Promise<void> {
  const deadline = Date.now() + END_WAIT_MS;
  while (!ids.every((id) => readMeta(join(root, id))?.ended)) {
    if (Date.now() > deadline) throw new Error('the recorder did not end the sessions');
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
const END_WAIT_MS = 60_000;
const POLL_MS = 10;

async function main(): Promise<void> {
  const work = benchWorkDir('tk-rec-bench-');
  const service = new RecordingService(work.dir, offline, quiet, 8 * 1024 * 1024 * 1024);
  const recorder = pgRecorder(service, 'bench', () => ({ mode: 'best-effort', maxRowsPerStatement: 1000 }));
  const identity = { subject: 'bob', name: 'bob', email: 'bob@example.com', groups: ['dba'], issuer: 'bench' };
  let runs = 0;
  const row = dataRow('-2712');
  const tag = 'SELECT 1';
  // A prepared statement's executions pass the same event each time (the session keeps it per name).
  const prepared = { text: 'SELECT abalance FROM pgbench_accounts WHERE aid = $1;', protocol: 'extended', class: 'read', decision: 'allow', rule: 'dba-read-approve-changes', reason: undefined } as const;
  // Simple queries' texts as the session has them: decoded from the message's bytes (flat strings; a
  // template literal's result is a rope, which the recorder would flatten first), a new one each time.
  const simpleTexts = Array.from({ length: SIMPLE_TEXTS }, (_, i) => Buffer.from(`SELECT abalance FROM pgbench_accounts WHERE aid = ${i};`).toString('utf8'));
  /** CPU per transaction in µs: all threads (the proxy's and the recorder's worker), and the proxy's alone. */
  const run = async (count: number, protocol: Protocol): Promise<{ all: number; proxy: number }> => {
    runs++;
    const ids = Array.from({ length: SESSIONS }, (_, i) => `00000000-0000-4000-8000-${String(runs * SESSIONS + i).padStart(12, '0')}`);
    const sessions = ids.map((sessionId) => {
      const observer = recorder.sessionStart({ sessionId, target: 'bench', identity, startupUser: 'bob', database: 'demo', applicationName: 'pgbench', clientAddress: '127.0.0.1:1', at: new Date() });
      if (!observer) throw new Error('recording is on: every session has an observer');
      return observer;
    });
    const started = process.cpuUsage();
    const proxyStarted = mainThreadMicros();
    for (let i = 0; i < count; i++) {
      const session = sessions[i % SESSIONS] as (typeof sessions)[number];
      session.statement(protocol === 'prepared' ? prepared : { text: simpleTexts[i % simpleTexts.length] as string, protocol: 'simple', class: 'read', decision: 'allow', rule: 'dba-read-approve-changes', reason: undefined });
      session.dataRow(row, 0, row.length);
      session.cycleEnd({ endedAt: Date.now(), durationMs: DURATIONS_MS[i % DURATIONS_MS.length] as number, commandTags: [tag], rowsSent: 1, errors: [] });
      // Let timers and messages (the worker's members) run as they would between network reads.
      if (i % 64 === 63) await new Promise((r) => setImmediate(r));
    }
    const proxy = mainThreadMicros() - proxyStarted;
    for (const session of sessions) session.end('done');
    await whenEnded(work.dir, ids);
    const used = process.cpuUsage(started);
    return { all: (used.user + used.system) / count, proxy: proxy / count };
  };
  const lines: string[] = [];
  for (const protocol of PROTOCOLS) {
    await run(20_000, protocol);
    const { all, proxy } = await run(TRANSACTIONS, protocol);
    lines.push(`recorder CPU per pgbench -S transaction, ${protocol} (statement, 1 row, result; ${SESSIONS} sessions, spool and gzip included): ${all.toFixed(2)} µs, of which ${proxy.toFixed(2)} µs on the proxy's thread (the rest on the recorder's worker)`);
    console.log(lines[lines.length - 1]);
  }
  service.stop();
  work.remove();
  appendResults('npm run bench:recording', lines);
}

runBench(main);
