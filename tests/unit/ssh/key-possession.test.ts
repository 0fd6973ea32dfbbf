import { execFileSync } from 'node:child_process';
import { createHash, createPrivateKey, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { keyProofStatement, SSH_KEY_PROOF_MAX_AGE_SECONDS, SSH_KEY_PROOF_NAMESPACE, verifyKeyProof } from '../../../core/ssh/key-possession';
import { parsePublicKeyLine, type SshPublicKey } from '../../../core/ssh/public-key';
import { MAX_SSHSIG_ARMORED_BYTES } from '../../../core/ssh/sshsig';
import { sshString } from '../../../core/ssh/wire';
import { provenKeyBody, sshKeygen, tempKeyDir, type GeneratedKey } from '../../support/ssh-keygen';

const ALICE = { issuer: 'https://idp.example.com', subject: 'alice' };

function parsed(key: GeneratedKey): SshPublicKey {
  const result = parsePublicKeyLine(key.publicLine);
  if (!result.ok) throw result.error;
  return result.value;
}

/** An SSHSIG made by hand (PROTOCOL.sshsig), for what ssh-keygen will not make: rsa-sha2-256, ssh-rsa (SHA-1), a key claimed but not used. */
function handMadeSshSig(privateKeyFile: string, claimedKey: SshPublicKey, message: string, algorithm: string, digest: string): string {
  const hashAlgorithm = 'sha512';
  const signed = Buffer.concat([Buffer.from('SSHSIG'), sshString(SSH_KEY_PROOF_NAMESPACE), sshString(''), sshString(hashAlgorithm), sshString(createHash(hashAlgorithm).update(message).digest())]);
  const privateKey = createPrivateKey(readFileSync(privateKeyFile));
  const signature = sign(digest, signed, privateKey);
  const version = Buffer.alloc(4);
  version.writeUInt32BE(1);
  const blob = Buffer.concat([Buffer.from('SSHSIG'), version, sshString(claimedKey.blob), sshString(SSH_KEY_PROOF_NAMESPACE), sshString(''), sshString(hashAlgorithm), sshString(Buffer.concat([sshString(algorithm), sshString(signature)]))]);
  const base64 = blob.toString('base64').replace(/.{70}/g, '$&\n');
  return `-----BEGIN SSH SIGNATURE-----\n${base64}\n-----END SSH SIGNATURE-----\n`;
}

describe('proof of possession of an SSH key being registered (SSHSIG)', () => {
  const keys = tempKeyDir();
  const made: Record<string, GeneratedKey> = {};
  beforeAll(() => {
    for (const [type, bits] of [['ed25519'], ['ecdsa', 256], ['ecdsa', 384], ['ecdsa', 521], ['rsa', 3072]] as const) made[`${type}${bits ?? ''}`] = sshKeygen(keys.dir, type, bits);
    made.other = sshKeygen(keys.dir, 'ed25519', undefined, 'other');
    // A copy of the RSA key in PEM, which Node's crypto reads (ssh-keygen -p rewrites it in place).
    made.rsaPem = sshKeygen(keys.dir, 'rsa', 3072, 'rsa-pem');
    execFileSync('ssh-keygen', ['-q', '-p', '-m', 'PEM', '-N', '', '-P', '', '-f', made.rsaPem.privateKeyFile], { stdio: 'pipe' });
  });
  afterAll(() => keys.remove());

  const check = (key: GeneratedKey, body: { signedAt: string; signature: string }, identity = ALICE, now = new Date()) => verifyKeyProof(identity, parsed(key), body.signedAt, body.signature, now);

  it.each(['ed25519', 'ecdsa256', 'ecdsa384', 'ecdsa521', 'rsa3072'])('accepts a %s key signing the statement with ssh-keygen -Y sign', (name) => {
    const key = made[name] as GeneratedKey;
    expect(check(key, provenKeyBody(key, ALICE))).toEqual({ ok: true, value: undefined });
  });

  it('accepts an rsa-sha2-256 signature', () => {
    const key = made.rsaPem as GeneratedKey;
    const signedAt = new Date().toISOString();
    const signature = handMadeSshSig(key.privateKeyFile, parsed(key), keyProofStatement(ALICE, parsed(key), signedAt), 'rsa-sha2-256', 'sha256');
    expect(check(key, { signedAt, signature }).ok).toBe(true);
  });

  it('refuses an ssh-rsa signature (SHA-1), though it verifies', () => {
    const key = made.rsaPem as GeneratedKey;
    const signedAt = new Date().toISOString();
    const signature = handMadeSshSig(key.privateKeyFile, parsed(key), keyProofStatement(ALICE, parsed(key), signedAt), 'ssh-rsa', 'sha1');
    expect(check(key, { signedAt, signature })).toEqual({ ok: false, error: expect.stringContaining('"ssh-rsa" is not accepted (SHA-1)') });
  });

  it('refuses a signature by another key', () => {
    const key = made.ed25519 as GeneratedKey;
    expect(check(key, provenKeyBody(key, ALICE, { signer: made.other?.privateKeyFile }))).toEqual({ ok: false, error: 'the signature was made by another key' });
  });

  it('refuses a signature that names the key but was made by another one', () => {
    const key = made.rsa3072 as GeneratedKey;
    const signedAt = new Date().toISOString();
    const signature = handMadeSshSig((made.rsaPem as GeneratedKey).privateKeyFile, parsed(key), keyProofStatement(ALICE, parsed(key), signedAt), 'rsa-sha2-512', 'sha512');
    expect(check(key, { signedAt, signature })).toEqual({ ok: false, error: 'the signature does not verify' });
  });

  it('refuses a signature made in another namespace', () => {
    const key = made.ed25519 as GeneratedKey;
    expect(check(key, provenKeyBody(key, ALICE, { namespace: 'file' }))).toEqual({ ok: false, error: expect.stringContaining('namespace "file"') });
  });

  it('refuses a statement for another identity, another time or another key (the message tampered)', () => {
    const key = made.ed25519 as GeneratedKey;
    const body = provenKeyBody(key, ALICE);
    expect(check(key, body, { ...ALICE, subject: 'mallory' })).toEqual({ ok: false, error: 'the signature does not verify' });
    expect(check(key, body, { ...ALICE, issuer: 'https://other.example.com' })).toEqual({ ok: false, error: 'the signature does not verify' });
    const later = new Date(Date.parse(body.signedAt) + 1).toISOString();
    expect(check(key, { ...body, signedAt: later })).toEqual({ ok: false, error: 'the signature does not verify' });
    const statement = keyProofStatement(ALICE, parsed(made.other as GeneratedKey), body.signedAt);
    expect(check(key, provenKeyBody(key, ALICE, { statement }))).toEqual({ ok: false, error: 'the signature does not verify' });
  });

  it('refuses a stale statement, one from the future, and a time in another spelling', () => {
    const key = made.ed25519 as GeneratedKey;
    const now = new Date();
    const stale = provenKeyBody(key, ALICE, { signedAt: new Date(now.getTime() - (SSH_KEY_PROOF_MAX_AGE_SECONDS + 1) * 1000) });
    expect(check(key, stale, ALICE, now)).toEqual({ ok: false, error: expect.stringContaining('sign again') });
    const future = provenKeyBody(key, ALICE, { signedAt: new Date(now.getTime() + 120_000) });
    expect(check(key, future, ALICE, now)).toEqual({ ok: false, error: expect.stringContaining('in the future') });
    const body = provenKeyBody(key, ALICE, { signedAt: now });
    expect(check(key, { ...body, signedAt: body.signedAt.replace('Z', '+00:00') }, ALICE, now)).toEqual({ ok: false, error: expect.stringContaining('ISO 8601') });
  });

  it('refuses what is not an armored SSH signature, and one over the size limit', () => {
    const key = made.ed25519 as GeneratedKey;
    const body = provenKeyBody(key, ALICE);
    const lines = body.signature.trim().split('\n');
    for (const signature of ['', 'garbage', body.signature.replace('SSH SIGNATURE', 'PGP SIGNATURE'), [lines[0], '!!!!', ...lines.slice(1)].join('\n'), `${body.signature}${' '.repeat(MAX_SSHSIG_ARMORED_BYTES)}x`]) {
      expect(check(key, { ...body, signature })).toEqual({ ok: false, error: 'the signature is not an SSH signature (ssh-keygen -Y sign output)' });
    }
  });
});
