import type { MaskingProfile } from './profile';

/** Deepest nesting walked; anything deeper is masked in full (a document nested this deep is not data to show). */
export const MAX_JSON_MASK_DEPTH = 64;
const TOO_DEEP = '****';

/**
 * A JSON document with its strings masked: a string whose path (`a.b.c`, array indexes left out) a
 * mask rule names is masked by that rule; every other string goes through the detectors. Numbers,
 * booleans and keys are kept. Pure: returns a new document.
 */
export function maskJson(doc: unknown, profile: MaskingProfile, path = '', depth = 0): unknown {
  if (depth > MAX_JSON_MASK_DEPTH) return TOO_DEEP;
  if (typeof doc === 'string') {
    const rule = path ? profile.column(path) : undefined;
    return rule ? rule.mask(doc) : profile.scanner.scanString(doc);
  }
  if (Array.isArray(doc)) return doc.map((item) => maskJson(item, profile, path, depth + 1));
  if (doc === null || typeof doc !== 'object') return doc;
  // Keys are data (`__proto__` too): the copy defines them, never assigns (an assigned __proto__ would vanish from what is shown).
  return Object.fromEntries(Object.entries(doc).map(([key, value]) => [key, maskJson(value, profile, path ? `${path}.${key}` : key, depth + 1)]));
}
