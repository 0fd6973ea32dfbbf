import { sshKeygen, tempKeyDir } from '../../support/ssh-keygen';
import { runClient, startSshStack, type SshStack } from '../../support/ssh-stack';
import { TUNNEL_PROTOCOL_VERSION } from '../../../core/tunnel/messages';

describe('ssh callers authenticated by a registered public key', () => {
  let stack: SshStack;
  const keys = tempKeyDir();

  beforeAll(async () => {
    stack = await startSshStack();
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
    keys.remove();
  });

  /** The agent's key store as the control plane's ssh.keys message leaves it. */
  function register(entries: { fingerprint: string; keyType: 'ssh-ed25519' | 'ssh-rsa'; expiresAt: number; subject: string; groups: string[] }[]): void {
    const outcome = stack.agent.context.registeredKeys.apply({
      type: 'ssh.keys',
      v: TUNNEL_PROTOCOL_VERSION,
      asOf: Date.now(),
      part: 0,
      parts: 1,
      keys: entries.map((e) => ({ ...e, issuer: stack.cp.issuer, name: e.subject })),
    });
    expect(outcome).toBe('applied');
  }

  const withKey = (file: string) => ['-o', 'PubkeyAuthentication=yes', '-o', 'PreferredAuthentications=publickey', '-o', 'IdentitiesOnly=yes', '-i', file];

  it('lets a caller in with a registered key, as the identity that registered it', async () => {
    const key = sshKeygen(keys.dir, 'ed25519', undefined, 'alice');
    register([{ fingerprint: key.fingerprint, keyType: 'ssh-ed25519', expiresAt: Date.now() + 3_600_000, subject: 'alice', groups: ['support'] }]);
    const run = await runClient(stack, 'box', 'ssh', 'unused', (dest) => [dest, 'id -un'], { extraOptions: withKey(key.privateKeyFile) });
    expect(run).toEqual({ code: 0, stdout: 'twokey-read\n', stderr: '' });
  });

  it('refuses a registered key that expired, and a key nobody registered', async () => {
    const expired = sshKeygen(keys.dir, 'ed25519', undefined, 'expired');
    const stranger = sshKeygen(keys.dir, 'ed25519', undefined, 'stranger');
    register([{ fingerprint: expired.fingerprint, keyType: 'ssh-ed25519', expiresAt: Date.now() - 1_000, subject: 'alice', groups: ['support'] }]);
    for (const key of [expired, stranger]) {
      const run = await runClient(stack, 'box', 'ssh', 'unused', (dest) => [dest, 'id -un'], { extraOptions: withKey(key.privateKeyFile) });
      expect(run.code).toBe(255);
      expect(run.stderr).toMatch(/Permission denied \(publickey,keyboard-interactive,password\)/);
    }
  });
});
