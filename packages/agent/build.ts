import { build, type BuildOptions } from 'esbuild';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Builds the `twokey-agent` npm package in packages/agent/dist: the agent and its recorder's worker
 * thread bundled (esbuild, Node 20), libpg-query (WASM) left as the package's one dependency, and a
 * package.json naming only that. `npm pack packages/agent/dist` makes the tarball.
 */
const ROOT = join(__dirname, '..', '..');
export const AGENT_PACKAGE_DIR = join(__dirname, 'dist');
/** Loaded at run time from its own files (a WASM module): installed, not bundled. */
const EXTERNAL = ['libpg-query'];
/**
 * Optional native speed-ups the agent does without: of `ws` and `pg`, and ssh2's crypto and
 * cpu-features addons (`*.node`; ssh2 loads them in a try and falls back to Node's crypto).
 */
const OPTIONAL_ABSENT = ['bufferutil', 'utf-8-validate', 'pg-native', '*.node'];

export async function buildAgentPackage(outDir = AGENT_PACKAGE_DIR): Promise<string> {
  const root = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; engines: Record<string, string>; dependencies: Record<string, string> };
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(join(outDir, 'bin'), { recursive: true });
  const common: BuildOptions = { bundle: true, platform: 'node', target: 'node20', format: 'cjs', external: [...EXTERNAL, ...OPTIONAL_ABSENT], legalComments: 'none', logLevel: 'warning' };
  await build({ ...common, entryPoints: [join(__dirname, 'bin.ts')], outfile: join(outDir, 'bin', 'twokey-agent.cjs'), banner: { js: '#!/usr/bin/env node' } });
  // The recorder starts its worker from the file beside its own code (pg-recorder's WORKER_BOOT).
  await build({ ...common, entryPoints: [join(ROOT, 'agent', 'recording', 'pg-recording-worker.ts')], outfile: join(outDir, 'bin', 'pg-recording-worker.cjs') });
  const manifest = {
    name: 'twokey-agent',
    version: root.version,
    description: 'twokey data-plane agent: approvals, masking and recording in front of PostgreSQL and SSH',
    license: 'UNLICENSED',
    bin: { 'twokey-agent': 'bin/twokey-agent.cjs' },
    files: ['bin/', 'twokey-agent.service', 'Dockerfile', 'agent.example.yaml'],
    engines: root.engines,
    dependencies: Object.fromEntries(EXTERNAL.map((name) => [name, root.dependencies[name] as string])),
  };
  writeFileSync(join(outDir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  for (const file of ['twokey-agent.service', 'Dockerfile']) cpSync(join(__dirname, file), join(outDir, file));
  cpSync(join(ROOT, 'examples', 'agent.yaml'), join(outDir, 'agent.example.yaml'));
  return outDir;
}

if (require.main === module) {
  buildAgentPackage().then(
    (dir) => console.log(`twokey-agent package in ${dir} (npm pack ${dir})`),
    (e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
