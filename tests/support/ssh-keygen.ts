import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keyProofStatement, SSH_KEY_PROOF_NAMESPACE, type KeyProofSubject } from '../../core/ssh/key-possession';
import { parsePublicKeyLine } from '../../core/ssh/public-key';

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

/** The identity a token names (unverified: the control plane verifies it; tests only need what to sign). */
export function tokenIdentity(token: string): KeyProofSubject {
  const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { iss: string; sub: string };
  return { issuer: claims.iss, subject: claims.sub };
}

/**
 * A registration body for `key` with its proof of possession, signed as `twokey ssh-keys add` signs it:
 * the real `ssh-keygen -Y sign` over the statement naming `identity` (`signer`: another private key, to forge).
 */
export function provenKeyBody(key: GeneratedKey, identity: KeyProofSubject, options: { signedAt?: Date; signer?: string; namespace?: string; statement?: string } = {}): { publicKey: string; signedAt: string; signature: string } {
  const signedAt = (options.signedAt ?? new Date()).toISOString();
  const parsed = parsePublicKeyLine(key.publicLine);
  if (!parsed.ok) throw parsed.error;
  const statement = options.statement ?? keyProofStatement(identity, parsed.value, signedAt);
  const signature = execFileSync('ssh-keygen', ['-Y', 'sign', '-f', options.signer ?? key.privateKeyFile, '-n', options.namespace ?? SSH_KEY_PROOF_NAMESPACE], { input: statement, encoding: 'utf8', stdio: 'pipe' });
  return { publicKey: key.publicLine, signedAt, signature };
}
