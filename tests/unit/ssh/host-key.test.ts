import { execFileSync } from 'node:child_process';
import { chmodSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { HostKeyError, hostKeyDir, loadOrCreateHostKey, readHostPublicKeyLine } from '../../../agent/ssh/host-key';
import { tempKeyDir } from '../../support/ssh-keygen';

describe('agent SSH host key', () => {
  const state = tempKeyDir();
  afterAll(() => state.remove());

  it('makes an Ed25519 key that ssh-keygen reads, 0600, and its public line', async () => {
    const key = await loadOrCreateHostKey(state.dir, 'web-1');
    const file = join(state.dir, 'ssh', 'web-1', 'host_key');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const derived = execFileSync('ssh-keygen', ['-y', '-f', file], { encoding: 'utf8' }).trim();
    expect(key.publicKeyLine.startsWith(`${derived.split(' ').slice(0, 2).join(' ')} `)).toBe(true);
    expect(await readHostPublicKeyLine(state.dir, 'web-1')).toBe(key.publicKeyLine);
  });

  it('keeps the key it made: the next start loads the same one', async () => {
    const first = await loadOrCreateHostKey(state.dir, 'web-2');
    const second = await loadOrCreateHostKey(state.dir, 'web-2');
    expect(second).toEqual(first);
  });

  it('refuses a host key file others can read', async () => {
    await loadOrCreateHostKey(state.dir, 'web-3');
    chmodSync(join(state.dir, 'ssh', 'web-3', 'host_key'), 0o644);
    await expect(loadOrCreateHostKey(state.dir, 'web-3')).rejects.toThrow(/readable by others/);
  });

  it('has no public line for a target never served', async () => {
    expect(await readHostPublicKeyLine(state.dir, 'never')).toBeUndefined();
  });

  it.each(['..', '../etc', 'a/b', ''])('refuses the target name %j as a directory', (target) => {
    expect(() => hostKeyDir(state.dir, target)).toThrow(HostKeyError);
  });
});
