import {
  DeleteCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import { AgentExistsError, VersionConflictError } from '../domain/errors';
import { isConditionFailure, scanTable } from './dynamo-table';
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

  list(): Promise<AgentRecord[]> {
    return scanTable<AgentRecord>(this.ddb, this.table);
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
    await this.ddb.send(new PutCommand({ TableName: this.table, Item: record }));
  }

  async get(connectionId: string): Promise<ConnectionRecord | undefined> {
    const out = await this.ddb.send(new GetCommand({ TableName: this.table, Key: { connectionId }, ConsistentRead: true }));
    return out.Item as ConnectionRecord | undefined;
  }

  async delete(connectionId: string): Promise<void> {
    await this.ddb.send(new DeleteCommand({ TableName: this.table, Key: { connectionId } }));
  }

  /** Read consistently: closing an agent's connections after a key rotation must see one recorded a moment ago. */
  list(): Promise<ConnectionRecord[]> {
    return scanTable<ConnectionRecord>(this.ddb, this.table, { consistentRead: true });
  }
}

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
