import type { Identity } from '../../core/identity/identity';
import { algorithmMatchesKeyType, sshFingerprint } from '../../core/ssh/public-key';
import type { ControlMessage, RegisteredSshKey } from '../../core/tunnel/messages';

export type SshKeysMessage = Extract<ControlMessage, { type: 'ssh.keys' }>;

/** Keys an agent holds at most (every caller's, across the deployment); a snapshot of more is refused whole. */
export const MAX_REGISTERED_KEYS = 100_000;

interface Assembly {
  readonly asOf: number;
  readonly parts: number;
  readonly received: Map<number, readonly RegisteredSshKey[]>;
}

/**
 * The SSH public keys callers registered through the control plane, as the agent last received them
 * whole. The SSH listener asks it who a key offered in publickey authentication belongs to; the
 * signature over the session is the listener's to verify. Kept in memory only: after a restart keys
 * work again once the control plane has sent them (tokens work meanwhile).
 */
export class RegisteredKeys {
  private byFingerprint = new Map<string, RegisteredSshKey>();
  private asOf = -1;
  private assembly: Assembly | undefined;

  /** Only keys registered by an identity of these issuers (the agent's own) ever match. */
  constructor(private readonly trustedIssuers: readonly string[]) {}

  get size(): number {
    return this.byFingerprint.size;
  }

  /** When the control plane read the set in place (epoch ms); -1 before any arrived. */
  get asOfMs(): number {
    return this.asOf;
  }

  /**
   * Takes one part of a snapshot. `applied`: the set was replaced; `partial`: waiting for more parts;
   * `stale`: a newer set is in place or being assembled; `refused`: the part does not fit the snapshot it claims to be of.
   * A part 0 starts a new snapshot (and drops one half received); other parts of another snapshot are ignored.
   */
  apply(message: SshKeysMessage): 'applied' | 'partial' | 'stale' | 'refused' {
    if (message.part >= message.parts) return 'refused';
    // Older than the set in place, or than a snapshot being assembled: two pushes may interleave, and an
    // older first part must not drop a newer snapshot half received (one that removed a key, say).
    if (message.asOf < this.asOf || (this.assembly !== undefined && message.asOf < this.assembly.asOf)) return 'stale';
    if (message.part === 0) this.assembly = { asOf: message.asOf, parts: message.parts, received: new Map() };
    const assembly = this.assembly;
    if (!assembly || assembly.asOf !== message.asOf || assembly.parts !== message.parts) return 'refused';
    assembly.received.set(message.part, message.keys);
    if (assembly.received.size < assembly.parts) return 'partial';
    this.assembly = undefined;
    const keys = [...assembly.received.values()].flat();
    if (keys.length > MAX_REGISTERED_KEYS) return 'refused';
    this.byFingerprint = indexByFingerprint(keys);
    this.asOf = assembly.asOf;
    return 'applied';
  }

  /** Trusts no key (the control plane could not send them); the next snapshot fills the set again. */
  clear(): void {
    this.byFingerprint = new Map();
    this.assembly = undefined;
    this.asOf = -1;
  }

  /**
   * Who registered this key, if it is registered, unexpired, of an algorithm that goes with its type and
   * registered through an issuer this agent trusts. `publicKeyAlgo` is the key type or, for RSA, the
   * signature algorithm (`rsa-sha2-256`/`-512`); refusing SHA-1 `ssh-rsa` signatures is the listener's.
   */
  lookup(publicKeyAlgo: string, publicKeyBlob: Buffer, now: number = Date.now()): Identity | undefined {
    const entry = this.byFingerprint.get(sshFingerprint(publicKeyBlob));
    if (!entry || entry.expiresAt <= now) return undefined;
    if (!algorithmMatchesKeyType(publicKeyAlgo, entry.keyType)) return undefined;
    if (!this.trustedIssuers.includes(entry.issuer)) return undefined;
    return { issuer: entry.issuer, subject: entry.subject, name: entry.name, email: entry.email, groups: entry.groups };
  }
}

/** A fingerprint listed twice names two identities: neither is trusted (the control plane never sends that). */
function indexByFingerprint(keys: readonly RegisteredSshKey[]): Map<string, RegisteredSshKey> {
  const index = new Map<string, RegisteredSshKey>();
  const doubled = new Set<string>();
  for (const key of keys) {
    if (index.has(key.fingerprint)) doubled.add(key.fingerprint);
    index.set(key.fingerprint, key);
  }
  for (const fingerprint of doubled) index.delete(fingerprint);
  return index;
}
