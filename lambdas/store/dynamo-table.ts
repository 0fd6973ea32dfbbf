import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, PutCommand, QueryCommand, ScanCommand, type DynamoDBDocumentClient, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';

/** Tables here stay small (agents, connections, approvals); a scan is bounded by this many pages. */
export const MAX_SCAN_PAGES = 100;

export async function scanTable<T>(ddb: DynamoDBDocumentClient, table: string, options: { consistentRead?: boolean } = {}): Promise<T[]> {
  const items: T[] = [];
  let start: Record<string, unknown> | undefined;
  for (let page = 0; page < MAX_SCAN_PAGES; page++) {
    const out = await ddb.send(new ScanCommand({ TableName: table, ExclusiveStartKey: start, ConsistentRead: options.consistentRead }));
    items.push(...((out.Items ?? []) as T[]));
    start = out.LastEvaluatedKey;
    if (!start) break;
  }
  return items;
}

/**
 * Every item a query matches, page after page (DynamoDB stops a page at 1 MB and says where with
 * LastEvaluatedKey). Bounded: a query that would need more pages than MAX_QUERY_PAGES fails loudly
 * rather than answer with part of its items.
 */
export const MAX_QUERY_PAGES = 100;

export async function queryAll<T>(ddb: DynamoDBDocumentClient, input: QueryCommandInput): Promise<T[]> {
  const items: T[] = [];
  let start: Record<string, unknown> | undefined;
  for (let page = 0; page < MAX_QUERY_PAGES; page++) {
    const out = await ddb.send(new QueryCommand({ ...input, ExclusiveStartKey: start }));
    items.push(...((out.Items ?? []) as T[]));
    start = out.LastEvaluatedKey;
    if (!start) return items;
  }
  throw new Error(`query of ${input.TableName} needs more than ${MAX_QUERY_PAGES} pages`);
}

/** A failed condition expression, from the SDK's typed error or from a stand-in that only sets the name. */
export const isConditionFailure = (e: unknown): boolean =>
  e instanceof ConditionalCheckFailedException || (e as { name?: string }).name === 'ConditionalCheckFailedException';

/** Stores `item` unless an item with the same key exists (retries and replays are idempotent). */
export async function putIfAbsent(ddb: DynamoDBDocumentClient, table: string, item: Record<string, unknown>, keyAttribute: string): Promise<'created' | 'exists'> {
  try {
    await ddb.send(new PutCommand({ TableName: table, Item: item, ConditionExpression: 'attribute_not_exists(#k)', ExpressionAttributeNames: { '#k': keyAttribute } }));
    return 'created';
  } catch (e) {
    if (isConditionFailure(e)) return 'exists';
    throw e;
  }
}

/** BatchGetItem takes this many keys a call; keys it leaves unprocessed (throttling) are asked for again, this many times. */
const BATCH_GET_KEYS = 100;
export const MAX_BATCH_GET_ROUNDS = 5;

/** The items with these keys (one key attribute), in no particular order; missing ones are absent. */
export async function batchGetAll(
  ddb: DynamoDBDocumentClient,
  table: string,
  keyAttribute: string,
  ids: readonly string[],
  projection: { expression: string; names: Record<string, string> },
): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  for (let i = 0; i < ids.length; i += BATCH_GET_KEYS) {
    let keys: Record<string, unknown>[] = [...new Set(ids.slice(i, i + BATCH_GET_KEYS))].map((id) => ({ [keyAttribute]: id }));
    for (let round = 0; keys.length > 0; round++) {
      if (round === MAX_BATCH_GET_ROUNDS) throw new Error(`batch read of ${table} left keys unprocessed ${MAX_BATCH_GET_ROUNDS} times`);
      const out = await ddb.send(new BatchGetCommand({ RequestItems: { [table]: { Keys: keys, ProjectionExpression: projection.expression, ExpressionAttributeNames: projection.names } } }));
      items.push(...((out.Responses?.[table] ?? []) as Record<string, unknown>[]));
      keys = (out.UnprocessedKeys?.[table]?.Keys ?? []) as Record<string, unknown>[];
    }
  }
  return items;
}
