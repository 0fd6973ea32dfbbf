/**
 * A policy change is itself an approval request: the proposed YAML is the request's `text` (its hash
 * the `sha256` the reviewers approve), and these details ride along.
 */
export interface PolicyChangeDetails {
  /** The version the change was written against; it must still be current when the change is applied. */
  readonly baseVersion: number;
  /** A unified diff from that version to the proposal, cut short past a size limit (`diffTruncated`). */
  readonly diff: string;
  readonly diffTruncated: boolean;
  readonly added: number;
  readonly removed: number;
  /** Why an admin applied it without approval (emergency changes only). */
  readonly emergencyReason?: string;
  /**
   * Once decided: the version it became; or, when nothing changed, the version that had replaced its
   * base, or why it was refused.
   */
  readonly result?: PolicyChangeResult;
}

export type PolicyChangeResult = { readonly applied: number } | { readonly conflict: number } | { readonly refused: string };
