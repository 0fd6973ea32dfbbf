import { generateKeyPairSync } from 'node:crypto';
import { algorithmMatchesKeyType, MAX_PUBLIC_KEY_LINE_BYTES, parsePublicKeyLine } from '../../../core/ssh/public-key';
import { sshString } from '../../../core/ssh/wire';
import { sshKeygen, tempKeyDir, type GeneratedKey } from '../../support/ssh-keygen';

/** An ssh-rsa line for a modulus of `bits` bits (ssh-keygen no longer makes keys this short). */
function rsaLine(bits: number, exponent = Buffer.from([1, 0, 1])): string {
  const jwk = generateKeyPairSync('rsa', { modulusLength: bits }).publicKey.export({ format: 'jwk' });
  const n = Buffer.from(jwk.n as string, 'base64url');
  const blob = Buffer.concat([sshString('ssh-rsa'), sshString(exponent), sshString(Buffer.concat([Buffer.from([0]), n]))]);
  return `ssh-rsa ${blob.toString('base64')} short`;
}

describe('SSH public key lines', () => {
  const keys = tempKeyDir();
  const made: Record<string, GeneratedKey> = {};
  beforeAll(() => {
    for (const [type, bits] of [['ed25519'], ['ecdsa', 256], ['ecdsa', 384], ['ecdsa', 521], ['rsa', 2048], ['rsa', 3072]] as const) {
      const key = sshKeygen(keys.dir, type, bits);
      made[`${type}${bits ?? ''}`] = key;
    }
  });
  afterAll(() => keys.remove());

  it.each(['ed25519', 'ecdsa256', 'ecdsa384', 'ecdsa521', 'rsa2048', 'rsa3072'])('accepts a %s key from ssh-keygen with its fingerprint as ssh-keygen -lf prints it', (name) => {
    const key = made[name] as GeneratedKey;
    const parsed = parsePublicKeyLine(key.publicLine);
    expect(parsed.ok && parsed.value.fingerprint).toBe(key.fingerprint);
    expect(parsed.ok && parsed.value.comment).toBe(`${name}@test`);
  });

  it('refuses a DSA key', () => {
    const parsed = parsePublicKeyLine(`ssh-dss ${Buffer.concat([sshString('ssh-dss'), sshString(Buffer.alloc(129, 1))]).toString('base64')}`);
    expect(!parsed.ok && parsed.error.message).toMatch(/DSA keys are refused/);
  });

  it('refuses a 1024-bit RSA key and accepts one of 2048 bits built the same way', () => {
    expect(parsePublicKeyLine(rsaLine(1024))).toMatchObject({ ok: false, error: { message: expect.stringMatching(/shorter than 2048 bits .*1024/) } });
    expect(parsePublicKeyLine(rsaLine(2048)).ok).toBe(true);
  });

  it('refuses an RSA key with an even exponent', () => {
    expect(parsePublicKeyLine(rsaLine(2048, Buffer.from([2]))).ok).toBe(false);
  });

  it.each([
    ['bad base64', 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI!!!'],
    ['base64 that is not canonical', `ssh-ed25519 ${'A'.repeat(67)}=`],
    ['no key', 'ssh-ed25519'],
    ['authorized_keys options', `command="x" ${'ssh-ed25519 AAAA'}`],
    ['two lines', 'ssh-ed25519 AAAA\nssh-ed25519 AAAA'],
    ['a certificate type', 'ssh-ed25519-cert-v01@openssh.com AAAA'],
    ['a security-key type', 'sk-ssh-ed25519@openssh.com AAAA'],
  ])('refuses %s', (_name, line) => {
    expect(parsePublicKeyLine(line).ok).toBe(false);
  });

  it('refuses a line of a type whose blob says another type', () => {
    const ed = (made.ed25519 as GeneratedKey).publicLine.split(' ')[1] as string;
    expect(parsePublicKeyLine(`ecdsa-sha2-nistp256 ${ed}`)).toMatchObject({ ok: false, error: { message: expect.stringMatching(/encoded type/) } });
  });

  it('refuses a blob with trailing bytes and one cut short', () => {
    const blob = Buffer.from((made.ed25519 as GeneratedKey).publicLine.split(' ')[1] as string, 'base64');
    expect(parsePublicKeyLine(`ssh-ed25519 ${Buffer.concat([blob, Buffer.from([0])]).toString('base64')}`).ok).toBe(false);
    expect(parsePublicKeyLine(`ssh-ed25519 ${blob.subarray(0, blob.length - 1).toString('base64')}`).ok).toBe(false);
  });

  it('refuses an ECDSA point that is not on its curve', () => {
    const point = Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 7)]);
    const blob = Buffer.concat([sshString('ecdsa-sha2-nistp256'), sshString('nistp256'), sshString(point)]);
    expect(parsePublicKeyLine(`ecdsa-sha2-nistp256 ${blob.toString('base64')}`)).toMatchObject({ ok: false, error: { message: expect.stringMatching(/not on its curve/) } });
  });

  it('refuses an oversized line before parsing it', () => {
    const parsed = parsePublicKeyLine(`ssh-rsa ${'A'.repeat(MAX_PUBLIC_KEY_LINE_BYTES)}`);
    expect(!parsed.ok && parsed.error.message).toMatch(/at most/);
  });

  it('refuses a comment with control characters', () => {
    expect(parsePublicKeyLine(`${(made.ed25519 as GeneratedKey).publicLine.split(' ').slice(0, 2).join(' ')} a\u001b[2Jb`).ok).toBe(false);
  });

  it('matches RSA keys with the SHA-2 signature algorithms and other types only by their own name', () => {
    expect(algorithmMatchesKeyType('rsa-sha2-512', 'ssh-rsa')).toBe(true);
    expect(algorithmMatchesKeyType('ssh-ed25519', 'ssh-rsa')).toBe(false);
    expect(algorithmMatchesKeyType('ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp256')).toBe(false);
  });
});
