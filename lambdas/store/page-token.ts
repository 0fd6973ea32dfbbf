/**
 * Opaque continuation tokens for paged listings: base64url of a position DynamoDB gave
 * (LastEvaluatedKey) and, for listings that walk partitions, the partition to go on in. A token is
 * only a position: the query it continues still applies its own key conditions, so a forged token
 * cannot reach items the query does not.
 */
export interface PagePosition {
  /** The partition (a month, yyyy-mm) the next page starts in. */
  readonly partition?: string;
  readonly key?: Record<string, string>;
}

/** Items a listing returns when the caller names no limit, and the most it may ask for. */
export const DEFAULT_PAGE_ITEMS = 100;
export const MAX_PAGE_ITEMS = 1000;
export const pageLimit = (limit: number): number => Math.max(1, Math.min(limit, MAX_PAGE_ITEMS));

/** A token that does not decode; the HTTP layer answers it with 400. */
export class InvalidPageTokenError extends Error {
  override name = 'InvalidPageTokenError';
}

const MAX_TOKEN_CHARS = 2048;
const MAX_KEY_VALUE_CHARS = 512;

export const encodePageToken = (position: PagePosition): string => Buffer.from(JSON.stringify(position), 'utf8').toString('base64url');

export function decodePageToken(token: string): PagePosition {
  if (token.length > MAX_TOKEN_CHARS || !/^[A-Za-z0-9_-]+$/.test(token)) throw new InvalidPageTokenError('next is not a page token');
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidPageTokenError('next is not a page token');
  }
  const { partition, key } = (value ?? {}) as { partition?: unknown; key?: unknown };
  const keyOk = key === undefined || (typeof key === 'object' && key !== null && Object.values(key).every((v) => typeof v === 'string' && v.length <= MAX_KEY_VALUE_CHARS));
  if (typeof value !== 'object' || value === null || (partition !== undefined && (typeof partition !== 'string' || !/^\d{4}-\d{2}$/.test(partition))) || !keyOk) {
    throw new InvalidPageTokenError('next is not a page token');
  }
  return { partition: partition as string | undefined, key: key as Record<string, string> | undefined };
}

/**
 * A token's position, checked against the query it continues: DynamoDB refuses (a 500) a start key
 * whose attributes are not exactly the index's and table's key, or that lies outside the queried
 * partition, so a token from another listing (or another caller's inbox) is a bad token here.
 */
export function positionFor(token: string | undefined, expected: { readonly keys: readonly string[]; readonly equal?: Readonly<Record<string, string>>; readonly partitioned?: boolean }): PagePosition {
  if (token === undefined) return {};
  const position = decodePageToken(token);
  const names = position.key ? Object.keys(position.key).sort() : undefined;
  const keysOk = names === undefined || (names.length === expected.keys.length && [...expected.keys].sort().every((k, i) => names[i] === k));
  const valuesOk = position.key === undefined || Object.entries(expected.equal ?? {}).every(([k, v]) => position.key?.[k] === v);
  const partitionOk = expected.partitioned ? position.partition !== undefined : position.partition === undefined;
  if (!keysOk || !valuesOk || !partitionOk) throw new InvalidPageTokenError('next is not a page token');
  return position;
}
