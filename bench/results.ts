import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const RESULTS_FILE = join(__dirname, 'RESULTS.md');

/** Appends one dated section to bench/RESULTS.md (each run adds; nothing is overwritten). */
export function appendResults(title: string, lines: readonly string[]): void {
  if (!existsSync(RESULTS_FILE)) writeFileSync(RESULTS_FILE, '# Benchmark results\n\nEach run appends a section. Same machine, same run for every column.\n');
  appendFileSync(RESULTS_FILE, `\n## ${new Date().toISOString().slice(0, 10)}: ${title}\n\n${lines.join('\n')}\n`);
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
