/** A verified caller. Built only by the token verifier; nothing else is trusted for identity. */
export interface Identity {
  readonly subject: string;
  readonly name: string;
  readonly email: string | undefined;
  readonly groups: readonly string[];
  readonly issuer: string;
}
