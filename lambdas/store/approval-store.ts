import { GetCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { PolicyChangeResult } from '../../core/approval/policy-change';
import type { ApprovalRecord, ApprovalStatus } from '../../core/approval/request';
import type { Vote } from '../../core/approval/votes';
import { principalKey } from '../../core/identity/identity';
import { isConditionFailure, putIfAbsent, queryAll, scanTable } from './dynamo-table';

export interface ApprovalStore {
  /** Stores a new request; `exists` when one with this id is already stored (a retried request). */
  create(record: ApprovalRecord): Promise<'created' | 'exists'>;
  get(requestId: string): Promise<ApprovalRecord | undefined>;
  /** The Step Functions task token stays here, in the control plane. */
  setTaskToken(requestId: string, taskToken: string): Promise<void>;
  getTaskToken(requestId: string): Promise<string | undefined>;
  markLinksSent(requestId: string): Promise<void>;
  /** Records one reviewer's vote while the request is pending; `duplicate` if that reviewer voted already. */
  addVote(requestId: string, vote: Vote): Promise<'recorded' | 'duplicate' | 'closed'>;
  /** Moves a pending request to its outcome once; false if it was already decided. */
  finalize(requestId: string, status: Exclude<ApprovalStatus, 'pending'>, at: string): Promise<boolean>;
  markDelivered(requestId: string): Promise<void>;
  /** Records what became of an approved policy change, once; false if a result was recorded already. */
  setPolicyChangeResult(requestId: string, result: PolicyChangeResult): Promise<boolean>;
  list(): Promise<ApprovalRecord[]>;
  /** Decided requests of `agent` whose decision it has not acknowledged (an index query, for every hello). */
  undelivered(agent: string): Promise<ApprovalRecord[]>;
}

/** A decided request is kept this long after its decision, then DynamoDB's TTL deletes it (the audit trail is the recordings and logs). */
export const DECIDED_APPROVAL_RETENTION_DAYS = 400;

type StoredApproval = ApprovalRecord & { taskToken?: string; undeliveredAgent?: string; ttl?: number };

/** The task token stays in the table; index and TTL attributes are storage's own. */
const withoutStorage = ({ taskToken: _token, undeliveredAgent: _index, ttl: _ttl, ...record }: StoredApproval): ApprovalRecord => record;

export class DynamoApprovalStore implements ApprovalStore {
  constructor(
    private readonly ddb: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  create(record: ApprovalRecord): Promise<'created' | 'exists'> {
    return putIfAbsent(this.ddb, this.table, { ...record }, 'requestId');
  }

  async get(requestId: string): Promise<ApprovalRecord | undefined> {
    const out = await this.ddb.send(new GetCommand({ TableName: this.table, Key: { requestId }, ConsistentRead: true }));
    if (!out.Item) return undefined;
    const { taskToken: _hidden, ...record } = out.Item as ApprovalRecord & { taskToken?: string };
    return record;
  }

  async setTaskToken(requestId: string, taskToken: string): Promise<void> {
    await this.ddb.send(new UpdateCommand({ TableName: this.table, Key: { requestId }, UpdateExpression: 'SET taskToken = :t', ExpressionAttributeValues: { ':t': taskToken } }));
  }

  async getTaskToken(requestId: string): Promise<string | undefined> {
    const out = await this.ddb.send(new GetCommand({ TableName: this.table, Key: { requestId }, ConsistentRead: true, ProjectionExpression: 'taskToken' }));
    return out.Item?.taskToken as string | undefined;
  }

  async markLinksSent(requestId: string): Promise<void> {
    await this.ddb.send(new UpdateCommand({ TableName: this.table, Key: { requestId }, UpdateExpression: 'SET linksSent = :y', ExpressionAttributeValues: { ':y': true } }));
  }

  async addVote(requestId: string, vote: Vote): Promise<'recorded' | 'duplicate' | 'closed'> {
    try {
      await this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { requestId },
          UpdateExpression: 'SET votes.#r = :v',
          ConditionExpression: '#s = :pending AND attribute_not_exists(votes.#r)',
          ExpressionAttributeNames: { '#r': principalKey(vote.reviewer), '#s': 'status' },
          ExpressionAttributeValues: { ':v': vote, ':pending': 'pending' },
        }),
      );
      return 'recorded';
    } catch (e) {
      if (!isConditionFailure(e)) throw e;
      const current = await this.get(requestId);
      return current?.votes[principalKey(vote.reviewer)] ? 'duplicate' : 'closed';
    }
  }

  async finalize(requestId: string, status: Exclude<ApprovalStatus, 'pending'>, at: string): Promise<boolean> {
    try {
      await this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { requestId },
          UpdateExpression: 'SET #s = :s, decidedAt = :at, undeliveredAgent = #agent, #ttl = :ttl',
          ConditionExpression: '#s = :pending',
          ExpressionAttributeNames: { '#s': 'status', '#ttl': 'ttl', '#agent': 'agent' },
          ExpressionAttributeValues: { ':s': status, ':at': at, ':pending': 'pending', ':ttl': Math.floor(Date.parse(at) / 1000) + DECIDED_APPROVAL_RETENTION_DAYS * 86_400 },
        }),
      );
      return true;
    } catch (e) {
      if (isConditionFailure(e)) return false;
      throw e;
    }
  }

  async markDelivered(requestId: string): Promise<void> {
    await this.ddb.send(new UpdateCommand({ TableName: this.table, Key: { requestId }, UpdateExpression: 'SET delivered = :y REMOVE undeliveredAgent', ExpressionAttributeValues: { ':y': true } }));
  }

  async setPolicyChangeResult(requestId: string, result: PolicyChangeResult): Promise<boolean> {
    try {
      await this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { requestId },
          UpdateExpression: 'SET policyChange.#r = :r',
          ConditionExpression: 'attribute_exists(policyChange) AND attribute_not_exists(policyChange.#r)',
          ExpressionAttributeNames: { '#r': 'result' },
          ExpressionAttributeValues: { ':r': result },
        }),
      );
      return true;
    } catch (e) {
      if (isConditionFailure(e)) return false;
      throw e;
    }
  }

  async list(): Promise<ApprovalRecord[]> {
    return (await scanTable<StoredApproval>(this.ddb, this.table)).map(withoutStorage);
  }

  async undelivered(agent: string): Promise<ApprovalRecord[]> {
    const items = await queryAll<StoredApproval>(this.ddb, {
      TableName: this.table,
      IndexName: 'undeliveredByAgent',
      KeyConditionExpression: 'undeliveredAgent = :a',
      ExpressionAttributeValues: { ':a': agent },
    });
    return items.map(withoutStorage);
  }
}
