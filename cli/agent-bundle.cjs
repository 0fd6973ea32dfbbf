// The agent runs from one bundled file, not through tsx: bundled, a module's imports are plain
// bindings (tsx's CommonJS interop turns each into a getter call on every use, which the Postgres hot
// path felt). Built at every start (esbuild takes a fraction of a second, in a child process: see
// buildAgentApart), so that there is no build
// step to forget. npm packages stay outside the bundle and load from node_modules as usual.
const { execFileSync } = require('node:child_process');
const { mkdirSync, renameSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');

const REPO = join(__dirname, '..');
/** Where the bundle is written: npm's conventional cache directory inside node_modules. */
const OUT_DIR = join(REPO, 'node_modules', '.cache', 'twokey-agent');

/**
 * Builds the agent (and its recorder worker, next to it) and returns the bundle's path. Each file is
 * written whole and renamed into place: agents starting at the same time never read half a bundle.
 */
function buildAgent() {
  const { buildSync } = require('esbuild');
  const { outputFiles } = buildSync({
    entryPoints: {
      // The whole command line (its commands load on demand): `twokey agent` reports errors as every command does.
      agent: join(REPO, 'cli', 'main.ts'),
      // pg-recorder.ts starts the worker from the file next to itself: in the bundle, this one.
      'pg-recording-worker': join(REPO, 'agent', 'recording', 'pg-recording-worker.ts'),
    },
    outdir: OUT_DIR,
    outExtension: { '.js': '.cjs' },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    packages: 'external',
    logLevel: 'error',
    write: false,
  });
  mkdirSync(OUT_DIR, { recursive: true });
  for (const file of outputFiles) {
    const temporary = `${file.path}.${process.pid}.tmp`;
    writeFileSync(temporary, file.contents);
    renameSync(temporary, file.path);
  }
  return join(OUT_DIR, 'agent.cjs');
}

/**
 * buildAgent in a child process, for the process that then runs the agent: esbuild's build leaves
 * about 17 MB resident in the process that ran it, which the agent would carry for its whole life.
 */
function buildAgentApart() {
  execFileSync(process.execPath, [__filename], { stdio: ['ignore', 'ignore', 'inherit'] });
  return join(OUT_DIR, 'agent.cjs');
}

if (require.main === module) buildAgent();

module.exports = { buildAgent, buildAgentApart, OUT_DIR };
