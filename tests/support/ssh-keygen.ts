import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A key made by the real ssh-keygen (OpenSSH's client package): its public line and `ssh-keygen -lf`'s fingerprint. */
export interface GeneratedKey {
  readonly privateKeyFile: string;
  readonly publicLine: string;
  readonly fingerprint: string;
}

export function sshKeygen(dir: string, type: string, bits?: number, name = `${type}${bits ?? ''}`): GeneratedKey {
  const file = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', type, ...(bits ? ['-b', String(bits)] : []), '-N', '', '-C', `${name}@test`, '-f', file], { stdio: 'pipe' });
  const publicLine = readFileSync(`${file}.pub`, 'utf8').trim();
  const fingerprint = execFileSync('ssh-keygen', ['-lf', `${file}.pub`], { encoding: 'utf8' }).split(' ')[1] as string;
  return { privateKeyFile: file, publicLine, fingerprint };
}

export function tempKeyDir(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'twokey-keys-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
