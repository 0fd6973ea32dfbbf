/** A verified caller. Built only by the token verifier; nothing else is trusted for identity. */
export interface Identity {
  readonly subject: string;
  readonly name: string;
  /** Only an address the issuer marked `email_verified: true`; display and policy `{ email }` names only. */
  readonly email: string | undefined;
  readonly groups: readonly string[];
  readonly issuer: string;
}

/**
 * The one key that names a caller: issuer and subject together (a `sub` is unique only within its
 * issuer). Grants, windows, reviewer exclusion and policy `users:` compare identities by this.
 */
export function principalKey(identity: Pick<Identity, 'issuer' | 'subject'>): string {
  return JSON.stringify([identity.issuer, identity.subject]);
}
