/** What the benchmarks read of the processes they start: memory from /proc, the control plane's info line, a port opening. */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import type { DevSigningKey } from '../local/oidc/dev-issuer';

const PORT_WAIT_TRIES = 200;
const PORT_WAIT_INTERVAL_MS = 50;

function procStatusMb(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1]) / 1024;
}
export const peakRssMb = (pid: number): number => procStatusMb(pid, 'VmHWM');
/** Resets the process's peak RSS (Linux: writing 5 to clear_refs), so that one phase's peak can be read. */
export const resetPeakRss = (pid: number): void => writeFileSync(`/proc/${pid}/clear_refs`, '5');
export const currentRssMb = (pid: number): number => procStatusMb(pid, 'VmRSS');

export const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
/** A /proc/<pid>/stat line's fields after the command name (which may hold spaces): utime is [11], stime [12]. */
export const statFields = (stat: string): string[] => stat.slice(stat.lastIndexOf(')') + 2).split(' ');
/**
 * utime + stime from a /proc/<pid>/stat line (the fields after the command name, which may hold spaces);
 * with `endedChildren`, plus the CPU of its children that ended and were waited for (cutime [13],
 * cstime [14]): a cell's PostgreSQL backends and pgbench end with it.
 */
export function statCpuSeconds(stat: string, endedChildren = false): number {
  const fields = statFields(stat);
  const own = Number(fields[11]) + Number(fields[12]);
  return (endedChildren ? own + Number(fields[13]) + Number(fields[14]) : own) / CLOCK_TICKS;
}
/** CPU seconds (user + system, every thread) a process has used so far. */
export const cpuSeconds = (pid: number): number => statCpuSeconds(readFileSync(`/proc/${pid}/stat`, 'utf8'));

/** The first line control-plane-process.ts prints: its URLs, issuer and dev signing key. */
export async function controlPlaneInfo(child: ChildProcess): Promise<{ httpUrl: string; wsUrl: string; issuer: string; signingKey: DevSigningKey }> {
  return new Promise((resolveInfo, reject) => {
    let text = '';
    child.once('exit', (code) => reject(new Error(`the control plane exited (code ${code})`)));
    child.stdout?.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
      const line = text.split('\n')[0];
      if (text.includes('\n') && line) resolveInfo(JSON.parse(line) as { httpUrl: string; wsUrl: string; issuer: string; signingKey: DevSigningKey });
    });
  });
}

export async function waitForPort(port: number, host = '127.0.0.1'): Promise<void> {
  for (let i = 0; i < PORT_WAIT_TRIES; i++) {
    const ok = await new Promise<boolean>((r) => {
      const s = connect(port, host, () => {
        s.destroy();
        r(true);
      });
      s.on('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, PORT_WAIT_INTERVAL_MS));
  }
  throw new Error(`port ${port} did not open`);
}
