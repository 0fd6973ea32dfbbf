import { GetCommand, PutCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { putIfAbsent, scanTable } from './dynamo-table';

export type SessionStatus = 'live' | 'complete' | 'incomplete';

export interface SessionRecord {
  readonly sessionId: string;
  readonly agent: string;
  readonly target: string;
  readonly protocol: string;
  readonly format: 'ndjson' | 'asciicast';
  /** The caller's subject (indexed). */
  readonly user: string;
  readonly identity: { subject: string; name: string; email?: string; groups: readonly string[] };
  readonly startedAt: string;
  readonly endedAt?: string;
  readonly status: SessionStatus;
  readonly chunkCount?: number;
  readonly finalDigest?: string;
  readonly prefix: string;
}

export interface SessionFilter {
  readonly target?: string;
  readonly user?: string;
  readonly from?: string;
  readonly to?: string;
}

export interface SessionStore {
  create(record: SessionRecord): Promise<'created' | 'exists'>;
  get(sessionId: string): Promise<SessionRecord | undefined>;
  finish(sessionId: string, fields: { endedAt: string; status: SessionStatus; chunkCount: number; finalDigest: string }): Promise<void>;
  query(filter: SessionFilter): Promise<SessionRecord[]>;
}

export interface AuditEvent {
  readonly eventId: string;
  readonly at: string;
  readonly actor: string;
  readonly action: string;
  readonly subject: string;
  readonly detail?: Record<string, unknown>;
}

export interface AuditStore {
  put(event: AuditEvent): Promise<void>;
}

export class DynamoSessionStore implements SessionStore {
  constructor(
    private readonly ddb: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  create(record: SessionRecord): Promise<'created' | 'exists'> {
    return putIfAbsent(this.ddb, this.table, { ...record }, 'sessionId');
  }

  async get(sessionId: string): Promise<SessionRecord | undefined> {
    const out = await this.ddb.send(new GetCommand({ TableName: this.table, Key: { sessionId }, ConsistentRead: true }));
    return out.Item as SessionRecord | undefined;
  }

  async finish(sessionId: string, fields: { endedAt: string; status: SessionStatus; chunkCount: number; finalDigest: string }): Promise<void> {
    await this.ddb.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { sessionId },
        UpdateExpression: 'SET endedAt = :e, #s = :s, chunkCount = :c, finalDigest = :d',
        ConditionExpression: 'attribute_exists(sessionId)',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':e': fields.endedAt, ':s': fields.status, ':c': fields.chunkCount, ':d': fields.finalDigest },
      }),
    );
  }

  async query(filter: SessionFilter): Promise<SessionRecord[]> {
    const index = filter.target ? { name: 'byTarget', key: 'target', value: filter.target } : filter.user ? { name: 'byUser', key: 'user', value: filter.user } : undefined;
    let items: SessionRecord[];
    if (index) {
      const out = await this.ddb.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: index.name,
          KeyConditionExpression: '#k = :v AND startedAt BETWEEN :from AND :to',
          ExpressionAttributeNames: { '#k': index.key },
          ExpressionAttributeValues: { ':v': index.value, ':from': filter.from ?? '0000', ':to': filter.to ?? '9999' },
          ScanIndexForward: false,
        }),
      );
      items = (out.Items ?? []) as SessionRecord[];
    } else items = await scanTable<SessionRecord>(this.ddb, this.table);
    return items.filter(
      (s) =>
        (!filter.user || s.user === filter.user) &&
        (!filter.target || s.target === filter.target) &&
        (!filter.from || s.startedAt >= filter.from) &&
        (!filter.to || s.startedAt <= filter.to),
    );
  }
}

export class DynamoAuditStore implements AuditStore {
  constructor(
    private readonly ddb: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async put(event: AuditEvent): Promise<void> {
    await this.ddb.send(new PutCommand({ TableName: this.table, Item: event }));
  }
}
