import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadOrCreateHostKey } from '../../agent/ssh/host-key';
import type { LocalControlPlane } from '../../local/control-plane';
import { freePort } from '../../local/free-port';
import { ASKPASS_OWNER_ENV, ASKPASS_PROGRAM, ASKPASS_TOKEN_ENV } from '../../cli/commands/ssh';
import { startTestControlPlane, tokenFor, waitFor } from '../support/control-plane';
import { twokey } from '../support/cli';
import { sshKeygen, tempKeyDir } from '../support/ssh-keygen';

/** A Linux account of this test's own: its password is the caller's token, so a real sshd checks what askpass gave. */
const TEST_USER = 'twokey-askpass';

/** Runs askpass as ssh would: a child of a child (a shell standing in for ssh) of `owner`, this process by default. */
function askpass(prompt: string[], token: string | undefined, owner = process.pid): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    const env = { PATH: process.env.PATH, [ASKPASS_OWNER_ENV]: String(owner), ...(token ? { [ASKPASS_TOKEN_ENV]: token } : {}) };
    execFile('sh', ['-c', '"$0" "$@"; exit $?', ASKPASS_PROGRAM, ...prompt], { env }, (error, stdout) => resolve({ code: error ? Number(error.code) : 0, stdout }));
  });
}

describe('twokey ssh-keys against the local control plane', () => {
  const keys = tempKeyDir();
  let cp: LocalControlPlane;
  let alice: string;
  beforeAll(async () => {
    cp = await startTestControlPlane();
    alice = await tokenFor(cp, 'alice', ['support']);
  });
  afterAll(async () => {
    await cp?.stop();
    keys.remove();
  });
  const cli = (args: string[], token = alice) => twokey([...args, '--url', cp.httpUrl], { TWOKEY_TOKEN: token });

  it('adds a key file with a TTL, lists it and removes it by fingerprint', async () => {
    const key = sshKeygen(keys.dir, 'ed25519', undefined, 'laptop');
    const added = await cli(['ssh-keys', 'add', `${key.privateKeyFile}.pub`, '--ttl', '2h']);
    expect(added).toMatchObject({ code: 0, stdout: expect.stringContaining(`registered ${key.fingerprint}`) });
    const listed = await cli(['ssh-keys', 'list', '--json']);
    const [row] = (JSON.parse(listed.stdout) as { keys: { fingerprint: string; expiresAt: string }[] }).keys;
    expect(row?.fingerprint).toBe(key.fingerprint);
    expect(Math.abs(Date.parse(row?.expiresAt ?? '') - Date.now() - 2 * 3600_000)).toBeLessThan(60_000);
    const table = await cli(['ssh-keys', 'list']);
    expect(table.stdout).toContain('laptop@test');
    expect(await cli(['ssh-keys', 'remove', key.fingerprint])).toMatchObject({ code: 0, stdout: expect.stringContaining(`removed ${key.fingerprint}`) });
    expect(JSON.parse((await cli(['ssh-keys', 'list', '--json'])).stdout)).toEqual({ keys: [] });
  });

  it('refuses a private key file before sending it, and says why a key cannot be registered', async () => {
    const key = sshKeygen(keys.dir, 'ed25519', undefined, 'secret');
    const privateFile = await cli(['ssh-keys', 'add', key.privateKeyFile]);
    expect(privateFile).toMatchObject({ code: 2, stderr: expect.stringContaining('not a public key file') });
    expect(await cli(['ssh-keys', 'add', '/dev/zero'])).toMatchObject({ code: 2, stderr: expect.stringContaining('not a public key file') });
    const dsa = join(keys.dir, 'dsa.pub');
    writeFileSync(dsa, `ssh-dss ${Buffer.alloc(64, 1).toString('base64')} old\n`);
    expect(await cli(['ssh-keys', 'add', dsa])).toMatchObject({ code: 2, stderr: expect.stringContaining('DSA keys are refused') });
    expect(await cli(['ssh-keys', 'add', `${key.privateKeyFile}.pub`, '--ttl', '2w'])).toMatchObject({ code: 2 });
  });

  it('proves possession with the private key beside the .pub, or the one --identity names, and is refused with another', async () => {
    const key = sshKeygen(keys.dir, 'ecdsa', 384, 'proven');
    const other = sshKeygen(keys.dir, 'ed25519', undefined, 'not-proven');
    const forged = await cli(['ssh-keys', 'add', `${key.privateKeyFile}.pub`, '--identity', other.privateKeyFile]);
    expect(forged).toMatchObject({ code: 1, stderr: expect.stringContaining('HTTP 400: no proof of possession of the private key: the signature was made by another key') });
    const detached = join(keys.dir, 'detached.pub');
    writeFileSync(detached, `${key.publicLine}\n`);
    expect(await cli(['ssh-keys', 'add', detached, '--identity', key.privateKeyFile])).toMatchObject({ code: 0, stdout: expect.stringContaining(`registered ${key.fingerprint}`) });
    const lost = join(keys.dir, 'lost.pub');
    writeFileSync(lost, `${other.publicLine}\n`);
    // No private key beside it and none in an agent: ssh-keygen cannot sign, nothing is sent.
    expect(await cli(['ssh-keys', 'add', lost])).toMatchObject({ code: 2, stderr: expect.stringContaining('ssh-keygen could not sign') });
  });

  it("cannot remove another person's key", async () => {
    const key = sshKeygen(keys.dir, 'ed25519', undefined, 'alices');
    expect((await cli(['ssh-keys', 'add', `${key.privateKeyFile}.pub`])).code).toBe(0);
    const bob = await tokenFor(cp, 'bob', []);
    expect(await cli(['ssh-keys', 'remove', key.fingerprint], bob)).toMatchObject({ code: 1, stderr: expect.stringContaining('HTTP 404') });
    expect((await cli(['ssh-keys', 'list'])).stdout).toContain(key.fingerprint);
  });
});

describe('twokey known-hosts and twokey ssh with the real OpenSSH client and server', () => {
  const state = tempKeyDir();
  // The system's crypt (and openssl passwd) take 256 bytes of a password at most; the agent takes whole tokens.
  const token = `eyJ.${randomBytes(180).toString('base64url')}.sig`;
  let port: number;
  let sshd: ChildProcess;
  let hostKeyLine: string;
  let sshdLog = '';
  const acceptedLogins = (): number => sshdLog.split('\n').filter((l) => l.startsWith(`Accepted password for ${TEST_USER}`)).length;
  beforeAll(async () => {
    try {
      execFileSync('id', [TEST_USER], { stdio: 'ignore' });
    } catch {
      execFileSync('useradd', ['--create-home', '--shell', '/bin/sh', TEST_USER]);
    }
    execFileSync('usermod', ['-p', execFileSync('openssl', ['passwd', '-6', '-stdin'], { input: token, encoding: 'utf8' }).trim(), TEST_USER]);
    hostKeyLine = (await loadOrCreateHostKey(state.dir, 'web')).publicKeyLine;
    port = await freePort('127.0.0.1');
    writeFileSync(join(state.dir, 'endpoints.json'), JSON.stringify({ web: `127.0.0.1:${port}`, 'orders-db': '127.0.0.1:1' }));
    const config = join(state.dir, 'sshd_config');
    writeFileSync(
      config,
      [`ListenAddress 127.0.0.1:${port}`, `HostKey ${join(state.dir, 'ssh', 'web', 'host_key')}`, 'PasswordAuthentication yes', 'KbdInteractiveAuthentication no', 'PubkeyAuthentication no', 'UsePAM no', 'StrictModes no', 'PidFile none', `AllowUsers ${TEST_USER}`].join('\n'),
    );
    execFileSync('mkdir', ['-p', '/run/sshd']);
    sshd = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    sshd.stderr?.on('data', (d) => (sshdLog += String(d)));
    await waitFor(() => sshdLog.includes('Server listening') || (sshd.exitCode !== null ? Promise.reject(new Error(sshdLog)) : undefined), 20_000, 'sshd');
  });
  afterAll(() => {
    sshd?.kill();
    // No password logs in to the account once the test is done.
    execFileSync('usermod', ['-p', '*', TEST_USER]);
    state.remove();
  });

  it("prints the agent's host key as a known_hosts line for each SSH endpoint", async () => {
    const out = await twokey(['known-hosts', '--state-dir', state.dir]);
    expect(out).toMatchObject({ code: 0, stdout: `[127.0.0.1]:${port} ${hostKeyLine}\n` });
    expect((await twokey(['known-hosts', '--state-dir', state.dir, '--target', 'web', '--host', 'ssh.example.org'])).stdout).toBe(`[ssh.example.org]:${port} ${hostKeyLine}\n`);
    expect(await twokey(['known-hosts', '--state-dir', state.dir, '--target', 'orders-db'])).toMatchObject({ code: 1, stdout: '' });
  });

  it('runs a remote command through ssh with the token as the password, passing its output and exit status back', async () => {
    const out = await twokey(['ssh', 'web', '--state-dir', state.dir, '--host', '127.0.0.1', '--port', String(port), '--user', TEST_USER, '--', 'echo from-$(whoami); exit 7'], { TWOKEY_SSH_TOKEN: token });
    expect(out.stdout).toBe(`from-${TEST_USER}\n`);
    expect(out.code).toBe(7);
    expect(out.stderr).not.toContain(token);
  });

  it('fails the login with another token (sshd checked what askpass gave)', async () => {
    const out = await twokey(['ssh', 'web', '--state-dir', state.dir, '--host', '127.0.0.1', '--port', String(port), '--user', TEST_USER, '--', 'true'], { TWOKEY_SSH_TOKEN: `${token}x` });
    expect(out.code).toBe(255);
    expect(out.stderr).toMatch(/Permission denied/);
  });

  it('gives the token to no other server: a jump host asking for a password through the same askpass gets nothing', async () => {
    const before = acceptedLogins();
    // The jump host is the same sshd with the same password, so a login to it would show that it received the token.
    const jump = `ssh -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -o PreferredAuthentications=password -o NumberOfPasswordPrompts=1 -p ${port} ${TEST_USER}@127.0.0.1 -W %h:%p`;
    const out = await twokey(['ssh', 'web', '--state-dir', state.dir, '--host', '127.0.0.1', '--port', String(port), '--user', TEST_USER, '--', '-o', `ProxyCommand=${jump}`, 'true'], { TWOKEY_SSH_TOKEN: token });
    expect(out.code).toBe(255);
    expect(acceptedLogins()).toBe(before);
    expect(out.stderr).not.toContain(token);
  });

  it('refuses a server whose host key is not the agent\'s', async () => {
    const other = tempKeyDir();
    try {
      const knownHosts = join(other.dir, 'known_hosts');
      writeFileSync(knownHosts, `[127.0.0.1]:${port} ${(await loadOrCreateHostKey(other.dir, 'web')).publicKeyLine}\n`);
      const out = await twokey(['ssh', 'web', '--known-hosts', knownHosts, '--host', '127.0.0.1', '--port', String(port), '--user', TEST_USER, '--', 'true'], { TWOKEY_SSH_TOKEN: token });
      expect(out.code).toBe(255);
      expect(out.stderr).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
    } finally {
      other.remove();
    }
  });

  it('answers password and token prompts with the token, and no passphrase or other question', async () => {
    expect(await askpass([`${TEST_USER}@127.0.0.1's password: `], token)).toEqual({ code: 0, stdout: `${token}\n` });
    // The agent's keyboard-interactive prompt (agent/ssh/caller-auth.ts on the ssh-plane branch).
    expect(await askpass(['Password (twokey token): '], token)).toEqual({ code: 0, stdout: `${token}\n` });
    expect((await askpass(["Enter passphrase for key '/root/.ssh/id_ed25519': "], token)).code).toBe(1);
    expect((await askpass(['Are you sure you want to continue connecting (yes/no/[fingerprint])? '], token)).code).toBe(1);
    expect((await askpass(['password: '], undefined)).code).toBe(1);
  });

  it('answers no ssh but the one twokey started (a program ssh runs, such as a jump host\'s ssh, gets nothing)', async () => {
    expect((await askpass([`${TEST_USER}@127.0.0.1's password: `], token, process.ppid)).code).toBe(1);
    expect((await askpass([`${TEST_USER}@127.0.0.1's password: `], token, 1)).code).toBe(1);
  });
});
