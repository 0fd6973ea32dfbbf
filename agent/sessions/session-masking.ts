import type { Identity } from '../../core/identity/identity';
import { maskJson } from '../../core/masking/json';
import { MaskingProfile } from '../../core/masking/profile';
import { StreamMasker } from '../../core/masking/stream';
import type { PolicyMask } from '../../core/policy/schema';

/** A text stream masked as it goes (terminal output, a log); `flush` when it goes idle or ends. */
export interface MaskedStream {
  push(chunk: string): string;
  flush(): string;
}

/**
 * One session's masking, whatever its protocol: values (a field named by its source), byte streams
 * and JSON documents, all from the masks the policy gives this caller on this target. Without masks
 * every method returns what it was given.
 */
export interface SessionMaskingHandle {
  /** Whether any mask applies (protocols skip their masking work when not). */
  readonly active: boolean;
  /** The compiled profile (protocols with their own result masking, such as Postgres, plan with it). */
  readonly profile: MaskingProfile | undefined;
  /** One value: masked by the rule naming `source` (`schema.table.column`, `kind.field`), else by the detectors (when they scan that source). */
  value(text: string, source?: string): string;
  stream(): MaskedStream;
  json(doc: unknown): unknown;
}

const UNMASKED_STREAM: MaskedStream = { push: (chunk) => chunk, flush: () => '' };

/** The masking handle for one session; `hashKey` is the deployment's key for `hash` masks (full masks until it arrives). */
export function sessionMasking(masks: readonly PolicyMask[], hashKey: Buffer | undefined): SessionMaskingHandle {
  const profile = masks.length ? new MaskingProfile(masks, hashKey) : undefined;
  if (!profile) return { active: false, profile, value: (text) => text, stream: () => UNMASKED_STREAM, json: (doc) => doc };
  return {
    active: true,
    profile,
    value: (text, source) => (source === undefined ? profile.scanner.scanString(text) : profile.maskValue(text, source)),
    stream: () => new StreamMasker(profile.scanner),
    json: (doc) => maskJson(doc, profile),
  };
}

/** What the agent knows that masking needs: the caller's masks on a target and the hash key. */
export interface MaskingSource {
  masks(identity: Identity, target: string): readonly PolicyMask[];
  maskingKey(): Buffer | undefined;
}

export const sessionMaskingFor = (source: MaskingSource, identity: Identity, target: string): SessionMaskingHandle =>
  sessionMasking(source.masks(identity, target), source.maskingKey());
