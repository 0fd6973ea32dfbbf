import { principalKey } from '../identity/identity';
import type { PolicyDocument } from '../policy/schema';
import { err, ok, type Result } from '../result';
import type { Requester } from './request';

/** One reviewer of one request: who they are at their IdP, and the mailbox their link goes to. */
export interface Reviewer {
  readonly issuer: string;
  readonly subject: string;
  readonly email: string;
}

export type ReviewerRefusal =
  | { readonly code: 'requester-not-in-directory'; readonly message: string }
  | { readonly code: 'not-enough-reviewers'; readonly message: string };

type Directory = Pick<PolicyDocument, 'issuer' | 'reviewers'>;

/** Every directory entry of these groups with its issuer resolved (the schema guarantees one). */
export function entriesOf(directory: Directory, groups: readonly string[]): Reviewer[] {
  return groups.flatMap((g) => directory.reviewers[g] ?? []).map((r) => ({ issuer: r.issuer ?? directory.issuer ?? '', subject: r.subject, email: r.email }));
}

/**
 * The reviewers of a request: the approver groups' directory entries, one per principal, without the
 * requester. The requester is excluded by principal (issuer and subject), and so is every mailbox that
 * is theirs: the addresses of their own directory entries and their verified email, since a link
 * proves only control of a mailbox.
 *
 * A requester whose token puts them in an approver group but who has no directory entry of their own
 * is refused outright: one of the entries may well be theirs under a subject or address we cannot tie
 * to them (an alias, a stale mapping), and guessing which would either mail them their own request or
 * silently drop a real reviewer. Refusing is visible and fixed by one line in the directory.
 */
export function reviewersFor(directory: Directory, groups: readonly string[], min: number, requester: Requester): Result<Reviewer[], ReviewerRefusal> {
  const me = principalKey(requester);
  const mine = entriesOf(directory, Object.keys(directory.reviewers)).filter((r) => principalKey(r) === me);
  const approverGroup = groups.find((g) => requester.groups.includes(g));
  if (approverGroup !== undefined && mine.length === 0) {
    return err({
      code: 'requester-not-in-directory',
      message: `you are in approver group ${approverGroup}, but the reviewers directory has no entry for subject ${requester.subject} at ${requester.issuer}; an admin must add you (so that you are never sent your own request) before you can ask`,
    });
  }
  const myMailboxes = new Set([...mine.map((r) => r.email.toLowerCase()), ...(requester.email ? [requester.email.toLowerCase()] : [])]);
  const seen = new Set<string>([me]);
  const reviewers: Reviewer[] = [];
  for (const r of entriesOf(directory, groups)) {
    const key = principalKey(r);
    if (seen.has(key) || myMailboxes.has(r.email.toLowerCase())) continue;
    seen.add(key);
    reviewers.push(r);
  }
  if (reviewers.length < min) {
    return err({ code: 'not-enough-reviewers', message: `${min} approval(s) needed but only ${reviewers.length} reviewer(s) other than the requester exist` });
  }
  return ok(reviewers);
}
