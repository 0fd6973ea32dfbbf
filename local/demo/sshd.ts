import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { chmod, chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { sshFingerprint } from '../../core/ssh/public-key';
import { freePort } from '../free-port';

const run = promisify(execFile);

export const SSHD_BINARY = '/usr/sbin/sshd';
/** The target's two Linux users: one that can only read the data directory, one that can write it. */
export const DEMO_SSH_USERS = { read: 'twokey-read', write: 'twokey-write' } as const;
/** How long sshd may take to listen. */
export const SSHD_START_TIMEOUT_MS = 10_000;

export interface DemoSshd {
  readonly host: string;
  readonly port: number;
  /** `SHA256:...` of the server's host key, as an agent pins it. */
  readonly hostKey: string;
  readonly readLogin: { readonly user: string; readonly keyFile: string };
  readonly writeLogin: { readonly user: string; readonly keyFile: string };
  /** Owned by the write user, readable by the read user. */
  readonly dataDir: string;
  stop(): Promise<void>;
}

/** Whether this machine can run the demo target (OpenSSH's server installed, and root to make its users). */
export const canRunSshd = (): boolean => existsSync(SSHD_BINARY) && process.getuid?.() === 0;

async function ensureUser(name: string): Promise<{ uid: number; gid: number }> {
  const id = async (): Promise<{ uid: number; gid: number }> => {
    const [u, g] = await Promise.all([run('id', ['-u', name]), run('id', ['-g', name])]);
    return { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) };
  };
  try {
    return await id();
  } catch {
    // Another process may create the same user at the same moment: what counts is that it exists after.
    await run('useradd', ['--create-home', '--shell', '/bin/bash', name]).catch(() => undefined);
    // '*' and not '!': with UsePAM no, sshd refuses a locked account even for key logins.
    await run('usermod', ['-p', '*', name]);
    return id();
  }
}

async function keyPair(file: string, comment: string): Promise<string> {
  if (!existsSync(file)) await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
  return (await readFile(`${file}.pub`, 'utf8')).trim();
}

function waitForPort(host: string, port: number, child: ChildProcess, timeoutMs: number, logFile: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise<void>((resolve, reject) => {
    const attempt = (): void => {
      if (child.exitCode !== null) return reject(new Error(`sshd exited with ${child.exitCode} (its log: ${logFile})`));
      const socket = connect({ host, port });
      socket.once('connect', () => {
        socket.destroy();
        resolve();
      });
      socket.once('error', () => {
        socket.destroy();
        if (Date.now() > deadline) reject(new Error(`sshd did not start listening (its log: ${logFile})`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

/**
 * A throwaway OpenSSH server on loopback for the demo and the tests: its own host key, config and
 * authorized keys in `dir`, the read and write users' key pairs made there, a data directory only the
 * write user can change. Needs root (it adds the two users when missing); `dir`'s parents must be
 * traversable by those users.
 */
export async function startDemoSshd(options: { dir: string; host?: string; port?: number }): Promise<DemoSshd> {
  const host = options.host ?? '127.0.0.1';
  const { dir } = options;
  await mkdir(join(dir, 'authorized'), { recursive: true });
  // The users read their authorized keys and the data directory through `dir`.
  await chmod(dir, 0o755);
  await ensureUser(DEMO_SSH_USERS.read);
  const writeUser = await ensureUser(DEMO_SSH_USERS.write);
  const hostPublic = await keyPair(join(dir, 'host_key'), 'twokey demo target');
  const readKey = join(dir, 'read_key');
  const writeKey = join(dir, 'write_key');
  await writeFile(join(dir, 'authorized', DEMO_SSH_USERS.read), `${await keyPair(readKey, 'twokey read login')}\n`, { mode: 0o644 });
  await writeFile(join(dir, 'authorized', DEMO_SSH_USERS.write), `${await keyPair(writeKey, 'twokey write login')}\n`, { mode: 0o644 });
  const dataDir = join(dir, 'data');
  await mkdir(dataDir, { recursive: true });
  await chown(dataDir, writeUser.uid, writeUser.gid);
  await chmod(dataDir, 0o755);
  const port = options.port ?? (await freePort(host));
  const config = join(dir, 'sshd_config');
  await writeFile(
    config,
    [
      `ListenAddress ${host}`,
      `Port ${port}`,
      `HostKey ${join(dir, 'host_key')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized', '%u')}`,
      `AllowUsers ${DEMO_SSH_USERS.read} ${DEMO_SSH_USERS.write}`,
      'UsePAM no',
      'StrictModes no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      'AcceptEnv LANG LC_* TZ',
      'AllowTcpForwarding yes',
      'X11Forwarding no',
      'MaxStartups 200',
      'MaxSessions 64',
      'Subsystem sftp internal-sftp',
      '',
    ].join('\n'),
  );
  await mkdir('/run/sshd', { recursive: true });
  // sshd's own log (-e) goes to a file beside its config: in the terminal, lines such as the readiness
  // probe's closed connection would read as errors.
  const logFile = join(dir, 'sshd.log');
  const log = openSync(logFile, 'a', 0o600);
  const child = spawn(SSHD_BINARY, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', log] });
  closeSync(log);
  await waitForPort(host, port, child, SSHD_START_TIMEOUT_MS, logFile);
  const blob = Buffer.from(hostPublic.split(' ')[1] ?? '', 'base64');
  return {
    host,
    port,
    hostKey: sshFingerprint(blob),
    readLogin: { user: DEMO_SSH_USERS.read, keyFile: readKey },
    writeLogin: { user: DEMO_SSH_USERS.write, keyFile: writeKey },
    dataDir,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
