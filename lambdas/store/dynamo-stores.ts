import {
  DeleteCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import { AgentExistsError, VersionConflictError } from '../domain/errors';
import { isConditionFailure, queryAll, scanTable } from './dynamo-table';
import { encodePageToken, pageLimit, positionFor } from './page-token';
import type { AgentRecord, AgentStore, ConnectionRecord, ConnectionStore, PolicyRecord, PolicyStore } from './stores';

/** All policy versions live under one partition; the deployment has one policy document. */
const POLICY_PARTITION = 'default';

export class DynamoAgentStore implements AgentStore {
  constructor(
    private readonly ddb: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async create(record: AgentRecord, replace: boolean): Promise<void> {
    try {
      await this.ddb.send(
        new PutCommand({
          TableName: this.table,
          Item: record,
          ConditionExpression: replace ? undefined : 'attribute_not_exists(#n)',
          ExpressionAttributeNames: replace ? undefined : { '#n': 'name' },
        }),
      );
    } catch (e) {
      if (isConditionFailure(e)) throw new AgentExistsError(`agent ${record.name} exists`);
      throw e;
    }
  }

  async get(name: string): Promise<AgentRecord | undefined> {
    const out = await this.ddb.send(new GetCommand({ TableName: this.table, Key: { name }, ConsistentRead: true }));
    return out.Item as AgentRecord | undefined;
  }

  async delete(name: string): Promise<boolean> {
    const out = await this.ddb.send(new DeleteCommand({ TableName: this.table, Key: { name }, ReturnValues: 'ALL_OLD' }));
    return out.Attributes !== undefined;
  }

  /** Every agent is the listing's subject, so a scan, but a page of one at a time (it never reads the table whole). */
  async list(page: { limit: number; next?: string }): Promise<{ agents: AgentRecord[]; next?: string }> {
    const start = positionFor(page.next, { keys: ['name'] }).key;
    const out = await this.ddb.send(new ScanCommand({ TableName: this.table, Limit: pageLimit(page.limit), ExclusiveStartKey: start }));
    return { agents: (out.Items ?? []) as AgentRecord[], ...(out.LastEvaluatedKey ? { next: encodePageToken({ key: out.LastEvaluatedKey as Record<string, string> }) } : {}) };
  }

  async markConnected(name: string, connectionId: string, at: string): Promise<void> {
    await this.ddb.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { name },
        UpdateExpression: 'SET connectionId = :c, connectedAt = :t, lastSeenAt = :t',
        ConditionExpression: 'attribute_exists(#n)',
        ExpressionAttributeNames: { '#n': 'name' },
        ExpressionAttributeValues: { ':c': connectionId, ':t': at },
      }),
    );
  }

  async markDisconnected(name: string, connectionId: string): Promise<void> {
    try {
      await this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { name },
          UpdateExpression: 'REMOVE connectionId',
          ConditionExpression: 'connectionId = :c',
          ExpressionAttributeValues: { ':c': connectionId },
        }),
      );
    } catch (e) {
      if (!isConditionFailure(e)) throw e;
    }
  }

  async recordHello(name: string, targets: readonly string[], agentVersion: string, at: string): Promise<void> {
    await this.ddb.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { name },
        UpdateExpression: 'SET targets = :targets, agentVersion = :v, lastSeenAt = :t',
        ConditionExpression: 'attribute_exists(#n)',
        ExpressionAttributeNames: { '#n': 'name' },
        ExpressionAttributeValues: { ':targets': targets, ':v': agentVersion, ':t': at },
      }),
    );
  }

  async touch(name: string, at: string): Promise<void> {
    await this.ddb.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { name },
        UpdateExpression: 'SET lastSeenAt = :t',
        ConditionExpression: 'attribute_exists(#n)',
        ExpressionAttributeNames: { '#n': 'name' },
        ExpressionAttributeValues: { ':t': at },
      }),
    );
  }
}

export class DynamoConnectionStore implements ConnectionStore {
  constructor(
    private readonly ddb: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async put(record: ConnectionRecord): Promise<void> {
    // API Gateway closes a WebSocket connection after 2 hours at most: a record older than that is one whose $disconnect was lost.
    const ttl = Math.floor(Date.parse(record.connectedAt) / 1000) + CONNECTION_RECORD_TTL_SECONDS;
    await this.ddb.send(new PutCommand({ TableName: this.table, Item: { ...record, ttl } }));
  }

  async get(connectionId: string): Promise<ConnectionRecord | undefined> {
    const out = await this.ddb.send(new GetCommand({ TableName: this.table, Key: { connectionId }, ConsistentRead: true }));
    return out.Item ? withoutTtl(out.Item as StoredConnection) : undefined;
  }

  async delete(connectionId: string): Promise<void> {
    await this.ddb.send(new DeleteCommand({ TableName: this.table, Key: { connectionId } }));
  }

  /** Read consistently: closing an agent's connections after a key rotation must see one recorded a moment ago. */
  async list(): Promise<ConnectionRecord[]> {
    return (await scanTable<StoredConnection>(this.ddb, this.table, { consistentRead: true })).map(withoutTtl);
  }

  /** By index (eventually consistent): a connection recorded a moment ago may be missing; its agent's hello gets what it missed. */
  async listForAgent(agent: string): Promise<ConnectionRecord[]> {
    const items = await queryAll<StoredConnection>(this.ddb, { TableName: this.table, IndexName: 'byAgent', KeyConditionExpression: '#a = :a', ExpressionAttributeNames: { '#a': 'agent' }, ExpressionAttributeValues: { ':a': agent } });
    return items.map(withoutTtl);
  }
}

/** API Gateway's longest WebSocket connection (2 hours) and an hour's margin. */
export const CONNECTION_RECORD_TTL_SECONDS = 3 * 3600;
type StoredConnection = ConnectionRecord & { ttl?: number };
const withoutTtl = ({ ttl: _ttl, ...record }: StoredConnection): ConnectionRecord => record;

export class DynamoPolicyStore implements PolicyStore {
  constructor(
    private readonly ddb: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async latest(): Promise<PolicyRecord | undefined> {
    const out = await this.ddb.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: 'policyName = :p',
        ExpressionAttributeValues: { ':p': POLICY_PARTITION },
        ScanIndexForward: false,
        Limit: 1,
        ConsistentRead: true,
      }),
    );
    const item = out.Items?.[0];
    return item ? toPolicyRecord(item) : undefined;
  }

  async putVersion(record: PolicyRecord): Promise<void> {
    try {
      await this.ddb.send(
        new PutCommand({
          TableName: this.table,
          Item: { policyName: POLICY_PARTITION, ...record },
          ConditionExpression: 'attribute_not_exists(version)',
        }),
      );
    } catch (e) {
      if (isConditionFailure(e)) throw new VersionConflictError(record.version);
      throw e;
    }
  }
}

export function toPolicyRecord(item: Record<string, unknown>): PolicyRecord {
  return {
    version: Number(item.version),
    source: String(item.source),
    updatedAt: String(item.updatedAt),
    updatedBy: String(item.updatedBy),
    ...(typeof item.changeRequest === 'string' ? { changeRequest: item.changeRequest } : {}),
    ...(Array.isArray(item.approvedBy) ? { approvedBy: item.approvedBy.map(String) } : {}),
    ...(typeof item.emergencyReason === 'string' ? { emergencyReason: item.emergencyReason } : {}),
  };
}
