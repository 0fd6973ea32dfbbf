/**
 * The local control plane in a process of its own, for bench/pg.ts. Deployed, the control plane is
 * AWS (API Gateway, Lambda, DynamoDB, S3), not on the agent's machine; here its stand-ins share the
 * machine's cores with the agent, pgbench and PostgreSQL, so the benchmark runs this process at the
 * lowest CPU priority: uploads still happen, through the same code, without taking the proxy's CPU.
 *
 * Usage: control-plane-process.ts WORK_DIR HOST. Prints one JSON line (URLs, issuer, dev signing key),
 * then serves until SIGTERM.
 */
import { join } from 'node:path';
import { startLocalControlPlane } from '../local/control-plane';

async function main(): Promise<void> {
  const [work, host] = process.argv.slice(2);
  if (!work || !host) throw new Error('usage: control-plane-process.ts WORK_DIR HOST');
  const cp = await startLocalControlPlane({ dataDir: undefined, s3Dir: join(work, 's3'), outboxDir: join(work, 'outbox'), host, ports: { http: 0, dynamo: 0, s3: 0 }, log: () => undefined });
  process.stdout.write(`${JSON.stringify({ httpUrl: cp.httpUrl, wsUrl: cp.wsUrl, issuer: cp.issuer, signingKey: cp.signingKey })}\n`);
  process.once('SIGTERM', () => void cp.stop().finally(() => process.exit(0)));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
