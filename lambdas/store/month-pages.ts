import { QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { encodePageToken, InvalidPageTokenError, pageLimit, positionFor } from './page-token';

/**
 * A time-ordered listing of everything in a table: a `month` (yyyy-mm) partition index sorted by an
 * ISO time, read newest first, month by month from `to` back to `from`, a page at a time. Never a scan.
 */
export interface MonthListing {
  readonly table: string;
  readonly index: string;
  /** The index's sort key (an ISO time). */
  readonly sortKey: string;
  /** The table's own key, which DynamoDB adds to an index's positions. */
  readonly tableKey: string;
  readonly from?: string;
  readonly to?: string;
  /** How many months back from `to` the listing reaches when it names no `from`. */
  readonly months: number;
  /** A filter DynamoDB applies to each page it reads (the page's `Limit` counts what it read). */
  readonly filter?: { readonly expression: string; readonly names: Record<string, string>; readonly values: Record<string, unknown> };
  readonly projection?: string;
  readonly projectionNames?: Record<string, string>;
}

/** A filtered listing may read many items to find a few: one request makes at most this many queries. */
export const MAX_QUERIES_PER_PAGE = 20;

export async function pageByMonth(ddb: DynamoDBDocumentClient, q: MonthListing, page: { limit: number; next?: string }): Promise<{ items: Record<string, unknown>[]; next?: string }> {
  const position = positionFor(page.next, { keys: [q.tableKey, 'month', q.sortKey], partitioned: true });
  // A position in another month than the partition it names would be refused by DynamoDB (a 500): it is a bad token.
  if (position.key && position.key.month !== position.partition) throw new InvalidPageTokenError('next is not a page token');
  const limit = pageLimit(page.limit);
  const to = q.to ?? new Date().toISOString();
  const last = monthOf(q.from ?? monthsBefore(to, q.months));
  const items: Record<string, unknown>[] = [];
  let month = position.partition ?? monthOf(to);
  let start = position.key;
  for (let queries = 0; month >= last && items.length < limit && queries < MAX_QUERIES_PER_PAGE; queries++) {
    const out = await ddb.send(
      new QueryCommand({
        TableName: q.table,
        IndexName: q.index,
        KeyConditionExpression: '#m = :m AND #at BETWEEN :from AND :to',
        FilterExpression: q.filter?.expression,
        ProjectionExpression: q.projection,
        ExpressionAttributeNames: { '#m': 'month', '#at': q.sortKey, ...q.filter?.names, ...q.projectionNames },
        ExpressionAttributeValues: { ':m': month, ':from': q.from ?? '0000', ':to': q.to ?? '9999', ...q.filter?.values },
        ScanIndexForward: false,
        Limit: limit - items.length,
        ExclusiveStartKey: start,
      }),
    );
    items.push(...((out.Items ?? []) as Record<string, unknown>[]));
    start = out.LastEvaluatedKey as Record<string, string> | undefined;
    if (!start) month = monthOf(monthsBefore(`${month}-01`, 1));
  }
  const more = start !== undefined || month >= last;
  return { items, ...(more ? { next: encodePageToken({ partition: month, key: start }) } : {}) };
}

export const monthOf = (iso: string): string => iso.slice(0, 7);

/** The ISO date `months` calendar months before `iso` (UTC). */
function monthsBefore(iso: string, months: number): string {
  const d = new Date(iso);
  const at = Number.isNaN(d.getTime()) ? new Date(0) : d;
  return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() - months, 1)).toISOString();
}
