import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { mintDevToken, withDevIssuer, type DevSigningKey } from '../local/oidc/dev-issuer';

const RESULTS_FILE = join(__dirname, 'RESULTS.md');
const LATEST = '## Latest';
const JOURNAL = '## Journal';
const SKELETON = `# Benchmark results\n\n${LATEST}\n\n${JOURNAL}\n`;

/** The commit measured (`-dirty` when the work tree has changes), or `unknown` outside a git checkout. */
function commitOf(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: __dirname, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: __dirname, encoding: 'utf8' }).trim();
    return dirty ? `${head}-dirty` : head;
  } catch {
    return 'unknown';
  }
}

const machineOf = (): string => `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'unknown CPU'}`;

/**
 * Records one run in bench/RESULTS.md: it becomes its benchmark's entry under "Latest" (date, commit,
 * machine), and the entry it replaces moves to the top of the journal.
 */
export function appendResults(title: string, lines: readonly string[]): void {
  const name = /npm run (bench:[a-z]+)/.exec(title)?.[1] ?? title;
  // A partial run (BENCH_ONLY=...) keeps an entry of its own: it does not replace the full run's figures.
  const only = /BENCH_ONLY=([a-z]+)/.exec(title)?.[1];
  const bench = only ? `${name} (BENCH_ONLY=${only})` : name;
  const text = existsSync(RESULTS_FILE) ? readFileSync(RESULTS_FILE, 'utf8') : SKELETON;
  const heading = `### npm run ${bench}\n`;
  const entry = `${heading}\n${new Date().toISOString().slice(0, 10)}, commit ${commitOf()}, ${machineOf()}: ${title}\n\n${lines.join('\n')}\n\n`;
  const latestAt = text.indexOf(`${LATEST}\n`);
  const journalAt = text.indexOf(`${JOURNAL}\n`);
  if (latestAt < 0 || journalAt < latestAt) throw new Error(`${RESULTS_FILE} has no "${LATEST}" section before "${JOURNAL}"`);
  const oldAt = text.indexOf(heading, latestAt);
  let latest: string;
  let replaced = '';
  if (oldAt >= 0 && oldAt < journalAt) {
    const next = text.indexOf('\n### ', oldAt + heading.length);
    const oldEnd = next >= 0 && next < journalAt ? next + 1 : journalAt;
    replaced = text.slice(oldAt, oldEnd).replace(heading, `### ${bench}, replaced as the latest\n`).trimEnd();
    latest = text.slice(0, oldAt) + entry + text.slice(oldEnd, journalAt);
  } else latest = text.slice(0, journalAt) + entry;
  const journal = text.slice(journalAt + JOURNAL.length + 1).replace(/^\n+/, '');
  writeFileSync(RESULTS_FILE, `${latest}${JOURNAL}\n\n${replaced ? `${replaced}\n\n` : ''}${journal}`);
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
