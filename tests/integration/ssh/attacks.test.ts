import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parsePublicKeyLine } from '../../../core/ssh/public-key';
import { sshKeygen, tempKeyDir, type GeneratedKey } from '../../support/ssh-keygen';
import { startSshStack, CLIENT_RUN_TIMEOUT_MS, type ClientRun, type SshStack } from '../../support/ssh-stack';

/** Attacks on the SSH data plane as an outsider would make them, with the real OpenSSH clients and raw ssh2 callers. */
describe('ssh data plane under attack', () => {
  let stack: SshStack;
  const keys = tempKeyDir();

  beforeAll(async () => {
    stack = await startSshStack();
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
    keys.remove();
  });

  /** Registers a key for `subject` as the control plane would send it. */
  const register = (key: GeneratedKey, subject: string, groups: string[]): void => {
    const parsed = parsePublicKeyLine(key.publicLine);
    if (!parsed.ok) throw parsed.error;
    const outcome = stack.agent.context.registeredKeys.apply({
      type: 'ssh.keys',
      v: 1,
      asOf: Date.now(),
      part: 0,
      parts: 1,
      keys: [{ fingerprint: parsed.value.fingerprint, keyType: parsed.value.type, expiresAt: Date.now() + 3_600_000, issuer: stack.cp.issuer, subject, name: subject, groups }],
    });
    expect(outcome).toBe('applied');
  };

  /** The real `ssh` with a private key and nothing else to try. */
  const sshWithKey = async (key: GeneratedKey, options: string[], command: string): Promise<ClientRun> => {
    const { host, port } = stack.endpoint('box');
    const args = ['-p', String(port), '-i', key.privateKeyFile, '-o', 'IdentitiesOnly=yes', '-o', `UserKnownHostsFile=${await stack.knownHosts('box')}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', '-o', 'PreferredAuthentications=publickey', '-o', 'LogLevel=ERROR', ...options, `caller@${host}`, command];
    const child = spawn('ssh', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), CLIENT_RUN_TIMEOUT_MS);
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    clearTimeout(timer);
    return { code, stdout, stderr };
  };

  describe('caller public keys', () => {
    let rsa: GeneratedKey;
    beforeAll(() => {
      rsa = sshKeygen(keys.dir, 'rsa', 2048);
      register(rsa, 'loader', []);
    });

    it('accepts a registered RSA key signing with SHA-2 (rsa-sha2-256)', async () => {
      const run = await sshWithKey(rsa, ['-o', 'PubkeyAcceptedAlgorithms=rsa-sha2-256'], 'id -un');
      expect(run).toEqual({ code: 0, stdout: 'twokey-read\n', stderr: '' });
    });

    it('refuses a registered RSA key signing with SHA-1 (ssh-rsa)', async () => {
      const marker = join(stack.sshd.dataDir, 'sha1-was-here');
      const run = await sshWithKey(rsa, ['-o', 'PubkeyAcceptedAlgorithms=ssh-rsa'], `touch ${marker}`);
      expect(run.code).toBe(255);
      expect(run.stderr).toMatch(/Permission denied \(publickey/);
      expect(existsSync(marker)).toBe(false);
    });
  });
});
