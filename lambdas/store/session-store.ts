import { GetCommand, PutCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { isConditionFailure, putIfAbsent, queryAll, scanTable } from './dynamo-table';

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
  /** Ends a live session; `already-ended` when it had ended (nothing is changed then). */
  finish(sessionId: string, fields: { endedAt: string; status: SessionStatus; chunkCount: number; finalDigest: string }): Promise<'finished' | 'already-ended'>;
  query(filter: SessionFilter): Promise<SessionRecord[]>;
}

/** A chunk's upload as the agent declared it when its URL was signed; S3 stores exactly these bytes or none. */
export interface ChunkRecord {
  readonly sessionId: string;
  readonly seq: number;
  /** SHA-256 of the stored (gzipped) chunk, hex: the chain's digest. */
  readonly sha256: string;
  readonly bytes: number;
}

export interface ChunkStore {
  /** Keeps the first declaration of a chunk: `same` for a repeat of it, `conflict` for other bytes under its number. */
  declare(chunk: ChunkRecord): Promise<'declared' | 'same' | 'conflict'>;
  /** The session's declared chunks with seq below `count`, in order. */
  list(sessionId: string, count: number): Promise<ChunkRecord[]>;
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

  async finish(sessionId: string, fields: { endedAt: string; status: SessionStatus; chunkCount: number; finalDigest: string }): Promise<'finished' | 'already-ended'> {
    try {
      await this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { sessionId },
          UpdateExpression: 'SET endedAt = :e, #s = :s, chunkCount = :c, finalDigest = :d',
          ConditionExpression: '#s = :live',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: { ':e': fields.endedAt, ':s': fields.status, ':c': fields.chunkCount, ':d': fields.finalDigest, ':live': 'live' },
        }),
      );
      return 'finished';
    } catch (e) {
      if (isConditionFailure(e)) return 'already-ended';
      throw e;
    }
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

export class DynamoChunkStore implements ChunkStore {
  constructor(
    private readonly ddb: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async declare(chunk: ChunkRecord): Promise<'declared' | 'same' | 'conflict'> {
    if ((await putIfAbsent(this.ddb, this.table, { ...chunk }, 'sessionId')) === 'created') return 'declared';
    const out = await this.ddb.send(new GetCommand({ TableName: this.table, Key: { sessionId: chunk.sessionId, seq: chunk.seq }, ConsistentRead: true }));
    const held = out.Item as ChunkRecord | undefined;
    return held?.sha256 === chunk.sha256 && held.bytes === chunk.bytes ? 'same' : 'conflict';
  }

  list(sessionId: string, count: number): Promise<ChunkRecord[]> {
    return queryAll<ChunkRecord>(this.ddb, {
      TableName: this.table,
      KeyConditionExpression: 'sessionId = :s AND seq < :n',
      ExpressionAttributeValues: { ':s': sessionId, ':n': count },
      ConsistentRead: true,
    });
  }
}
