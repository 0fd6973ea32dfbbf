import { err, ok, type Result } from '../result';
import type { SshPublicKey } from './public-key';
import { verifySshSig } from './sshsig';

/**
 * Registering an SSH key proves possession of its private half: the caller signs, with
 * `ssh-keygen -Y sign -n twokey-ssh-key`, a statement naming the identity the key is registered to
 * (issuer and subject of the registering token), the key, and the time. The control plane rebuilds the
 * statement from the token's identity and the key it was given, so a signature serves only that
 * identity and key, and only for SSH_KEY_PROOF_MAX_AGE_SECONDS: within that window a replay can only
 * register the same key to the same identity again, with that identity's own token.
 */
export const SSH_KEY_PROOF_NAMESPACE = 'twokey-ssh-key';
export const SSH_KEY_PROOF_MAX_AGE_SECONDS = 300;
/** How far ahead of the control plane's clock a caller's clock may be. */
export const SSH_KEY_PROOF_MAX_CLOCK_SKEW_SECONDS = 60;

export interface KeyProofSubject {
  readonly issuer: string;
  readonly subject: string;
}

/** The statement signed: one field a line, the key without its comment (a comment is not the key). */
export function keyProofStatement(identity: KeyProofSubject, key: Pick<SshPublicKey, 'type' | 'blob'>, signedAt: string): string {
  return ['twokey ssh-key v1', `issuer ${identity.issuer}`, `subject ${identity.subject}`, `key ${key.type} ${key.blob.toString('base64')}`, `time ${signedAt}`, ''].join('\n');
}

/** `signedAt` as the CLI writes it (`Date.toISOString`), so that one instant has one spelling. */
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** Checks a proof of possession: the time within its window, the signature by the key over the statement for this identity. */
export function verifyKeyProof(identity: KeyProofSubject, key: SshPublicKey, signedAt: string, signature: string, now: Date): Result<void, string> {
  const at = ISO_INSTANT.test(signedAt) ? Date.parse(signedAt) : NaN;
  if (Number.isNaN(at)) return err('signedAt must be an ISO 8601 UTC time (2026-01-01T00:00:00.000Z)');
  const age = (now.getTime() - at) / 1000;
  if (age > SSH_KEY_PROOF_MAX_AGE_SECONDS) return err(`the proof was signed ${Math.round(age)} s ago; sign again (at most ${SSH_KEY_PROOF_MAX_AGE_SECONDS} s)`);
  if (age < -SSH_KEY_PROOF_MAX_CLOCK_SKEW_SECONDS) return err('the proof is signed in the future: check the clock');
  const verified = verifySshSig(signature, Buffer.from(keyProofStatement(identity, key, signedAt)), SSH_KEY_PROOF_NAMESPACE, key);
  return verified.ok ? ok(undefined) : err(verified.error.message);
}
