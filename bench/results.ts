import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { mintDevToken, withDevIssuer, type DevSigningKey } from '../local/oidc/dev-issuer';

const RESULTS_FILE = join(__dirname, 'RESULTS.md');

/** Appends one dated section to bench/RESULTS.md (each run adds; nothing is overwritten). */
export function appendResults(title: string, lines: readonly string[]): void {
  if (!existsSync(RESULTS_FILE)) writeFileSync(RESULTS_FILE, '# Benchmark results\n\nEach run appends a section. Same machine, same run for every column.\n');
  appendFileSync(RESULTS_FILE, `\n## ${new Date().toISOString().slice(0, 10)}: ${title}\n\n${lines.join('\n')}\n`);
}

/**
 * A scratch directory for one run (a database, spools: hundreds of MB), removed when the run ends;
 * BENCH_KEEP=1 keeps it, to read the agent's log afterwards.
 */
export function benchWorkDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return {
    dir,
    remove: () => {
      if (process.env.BENCH_KEEP) console.log(`kept: ${dir}`);
      else rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs a benchmark's main and exits with its outcome (servers it started must not keep the process alive). */
export function runBench(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}

/**
 * Readies a fresh local control plane the way `twokey dev` does: stores the demo policy and registers
 * the `demo-agent`. Returns the admin's headers and the agent's key.
 */
export async function seedDemoControlPlane(cp: { httpUrl: string; issuer: string; signingKey: DevSigningKey }): Promise<{ adminHeaders: Record<string, string>; agentKey: string }> {
  const adminHeaders = { authorization: `Bearer ${await mintDevToken(cp.issuer, cp.signingKey, { user: 'root', groups: ['admin'], audience: 'api' })}` };
  const policy = withDevIssuer(readFileSync(resolve(__dirname, '..', 'examples/dev/policy.yaml'), 'utf8'), cp.issuer);
  await fetch(`${cp.httpUrl}/policies`, { method: 'PUT', headers: { ...adminHeaders, 'if-match': '"0"' }, body: policy });
  const registered = await fetch(`${cp.httpUrl}/agents`, { method: 'POST', headers: adminHeaders, body: JSON.stringify({ name: 'demo-agent' }) });
  return { adminHeaders, agentKey: ((await registered.json()) as { key: string }).key };
}
