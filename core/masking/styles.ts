import { createHmac } from 'node:crypto';

/**
 * How a masked value is shown. `full` hides everything; `partial` keeps the last four characters (what
 * a support agent reads back to a caller); `hash` replaces the value by a keyed digest, so masked values
 * still join and group but cannot be reversed or brute-forced without the deployment's key.
 */
export type MaskStyle = 'full' | 'partial' | 'hash';

export const FULL_MASK = '****';
export const PARTIAL_KEEP_CHARS = 4;
/** Hex characters of the HMAC-SHA256 kept in a hashed value: 64 bits, enough to join on. */
export const HASH_DIGEST_HEX_CHARS = 16;

/** Strength order for overlapping rules: the one that reveals least wins. */
export const STYLE_STRENGTH: Readonly<Record<MaskStyle, number>> = { partial: 1, hash: 2, full: 3 };

export function strongerStyle(a: MaskStyle, b: MaskStyle): MaskStyle {
  return STYLE_STRENGTH[a] >= STYLE_STRENGTH[b] ? a : b;
}

/** The masked text when it does not depend on the value (full, or hash without a key), else undefined. */
export function constantMask(style: MaskStyle, hashKey: Buffer | undefined): string | undefined {
  return style === 'full' || (style === 'hash' && !hashKey) ? FULL_MASK : undefined;
}

/** A masking function for one style. Without a key, `hash` degrades to `full` rather than to something weaker. */
export function maskerFor(style: MaskStyle, hashKey: Buffer | undefined): (value: string) => string {
  if (style === 'partial') {
    return (value) => {
      const chars = [...value];
      return chars.length <= PARTIAL_KEEP_CHARS * 2 ? FULL_MASK : FULL_MASK + chars.slice(-PARTIAL_KEEP_CHARS).join('');
    };
  }
  if (style === 'hash' && hashKey) {
    return (value) => `hmac:${createHmac('sha256', hashKey).update(value).digest('hex').slice(0, HASH_DIGEST_HEX_CHARS)}`;
  }
  return () => FULL_MASK;
}
