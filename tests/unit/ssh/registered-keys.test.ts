import { parsePublicKeyLine, type SshPublicKey } from '../../../core/ssh/public-key';
import type { RegisteredSshKey } from '../../../core/tunnel/messages';
import { RegisteredKeys, type SshKeysMessage } from '../../../agent/ssh/registered-keys';
import { sshKeygen, tempKeyDir } from '../../support/ssh-keygen';

const ISSUER = 'https://issuer.example';
const NOW = 1_800_000_000_000;

describe('RegisteredKeys', () => {
  const keys = tempKeyDir();
  let ed: SshPublicKey;
  let rsa: SshPublicKey;
  beforeAll(() => {
    const parse = (line: string): SshPublicKey => {
      const parsed = parsePublicKeyLine(line);
      if (!parsed.ok) throw parsed.error;
      return parsed.value;
    };
    ed = parse(sshKeygen(keys.dir, 'ed25519').publicLine);
    rsa = parse(sshKeygen(keys.dir, 'rsa', 2048).publicLine);
  });
  afterAll(() => keys.remove());

  const entry = (key: SshPublicKey, subject: string, overrides: Partial<RegisteredSshKey> = {}): RegisteredSshKey => ({
    fingerprint: key.fingerprint,
    keyType: key.type,
    expiresAt: NOW + 60_000,
    issuer: ISSUER,
    subject,
    name: subject,
    groups: ['support'],
    ...overrides,
  });
  const snapshot = (asOf: number, entries: RegisteredSshKey[], part = 0, parts = 1): SshKeysMessage => ({ type: 'ssh.keys', v: 1, asOf, part, parts, keys: entries });

  it('names the identity that registered a key, with its groups', () => {
    const registered = new RegisteredKeys([ISSUER]);
    expect(registered.apply(snapshot(1, [entry(ed, 'alice')]))).toBe('applied');
    expect(registered.lookup('ssh-ed25519', ed.blob, NOW)).toEqual({ issuer: ISSUER, subject: 'alice', name: 'alice', email: undefined, groups: ['support'] });
  });

  it('never matches an expired key', () => {
    const registered = new RegisteredKeys([ISSUER]);
    registered.apply(snapshot(1, [entry(ed, 'alice', { expiresAt: NOW })]));
    expect(registered.lookup('ssh-ed25519', ed.blob, NOW)).toBeUndefined();
    expect(registered.lookup('ssh-ed25519', ed.blob, NOW - 1)).toBeDefined();
  });

  it('matches an RSA key with rsa-sha2 algorithms but no key offered under another type', () => {
    const registered = new RegisteredKeys([ISSUER]);
    registered.apply(snapshot(1, [entry(rsa, 'alice'), entry(ed, 'bob')]));
    expect(registered.lookup('rsa-sha2-256', rsa.blob, NOW)?.subject).toBe('alice');
    expect(registered.lookup('ssh-ed25519', rsa.blob, NOW)).toBeUndefined();
    expect(registered.lookup('ssh-rsa', ed.blob, NOW)).toBeUndefined();
  });

  it('ignores keys registered through an issuer the agent does not trust', () => {
    const registered = new RegisteredKeys(['https://other.example']);
    registered.apply(snapshot(1, [entry(ed, 'alice')]));
    expect(registered.lookup('ssh-ed25519', ed.blob, NOW)).toBeUndefined();
  });

  it('trusts neither identity of a fingerprint listed twice', () => {
    const registered = new RegisteredKeys([ISSUER]);
    registered.apply(snapshot(1, [entry(ed, 'alice'), entry(ed, 'mallory')]));
    expect(registered.lookup('ssh-ed25519', ed.blob, NOW)).toBeUndefined();
  });

  it('replaces the set only when every part of a snapshot arrived, and drops keys the new snapshot lacks', () => {
    const registered = new RegisteredKeys([ISSUER]);
    registered.apply(snapshot(1, [entry(ed, 'alice')]));
    expect(registered.apply(snapshot(2, [entry(rsa, 'bob')], 0, 2))).toBe('partial');
    expect(registered.lookup('ssh-ed25519', ed.blob, NOW)?.subject).toBe('alice');
    expect(registered.apply(snapshot(2, [], 1, 2))).toBe('applied');
    expect(registered.lookup('ssh-ed25519', ed.blob, NOW)).toBeUndefined();
    expect(registered.lookup('ssh-rsa', rsa.blob, NOW)?.subject).toBe('bob');
  });

  it('keeps the newer set when an older snapshot arrives after it', () => {
    const registered = new RegisteredKeys([ISSUER]);
    registered.apply(snapshot(5, []));
    expect(registered.apply(snapshot(4, [entry(ed, 'alice')]))).toBe('stale');
    expect(registered.lookup('ssh-ed25519', ed.blob, NOW)).toBeUndefined();
  });

  it('keeps assembling the newer snapshot when the first part of an older one arrives in between (two pushes interleaved)', () => {
    const registered = new RegisteredKeys([ISSUER]);
    registered.apply(snapshot(1, [entry(ed, 'alice')]));
    // The removal's snapshot (asOf 3, without alice's key) and an older one read before it (asOf 2, with it).
    expect(registered.apply(snapshot(3, [entry(rsa, 'bob')], 0, 2))).toBe('partial');
    expect(registered.apply(snapshot(2, [entry(ed, 'alice')], 0, 2))).toBe('stale');
    expect(registered.apply(snapshot(3, [], 1, 2))).toBe('applied');
    expect(registered.apply(snapshot(2, [], 1, 2))).not.toBe('applied');
    expect(registered.lookup('ssh-ed25519', ed.blob, NOW)).toBeUndefined();
    expect(registered.lookup('ssh-rsa', rsa.blob, NOW)?.subject).toBe('bob');
  });

  it('refuses parts of a snapshot it did not see start, and a part beyond the count', () => {
    const registered = new RegisteredKeys([ISSUER]);
    expect(registered.apply(snapshot(3, [entry(ed, 'alice')], 1, 2))).toBe('refused');
    expect(registered.apply(snapshot(3, [entry(ed, 'alice')], 2, 2))).toBe('refused');
    registered.apply(snapshot(3, [], 0, 2));
    expect(registered.apply(snapshot(4, [entry(ed, 'alice')], 1, 2))).toBe('refused');
    expect(registered.size).toBe(0);
  });

  it('trusts no key once cleared, and takes the next snapshot whatever its time', () => {
    const registered = new RegisteredKeys([ISSUER]);
    registered.apply(snapshot(9, [entry(ed, 'alice')]));
    registered.clear();
    expect(registered.lookup('ssh-ed25519', ed.blob, NOW)).toBeUndefined();
    expect(registered.apply(snapshot(8, [entry(ed, 'alice')]))).toBe('applied');
    expect(registered.lookup('ssh-ed25519', ed.blob, NOW)?.subject).toBe('alice');
  });
});
