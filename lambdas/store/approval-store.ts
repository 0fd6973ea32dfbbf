import { GetCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { PolicyChangeResult } from '../../core/approval/policy-change';
import type { ApprovalRecord, ApprovalStatus } from '../../core/approval/request';
import type { Vote } from '../../core/approval/votes';
import { principalKey } from '../../core/identity/identity';
import { isConditionFailure, putIfAbsent, scanTable } from './dynamo-table';

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
}

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
          UpdateExpression: 'SET #s = :s, decidedAt = :at',
          ConditionExpression: '#s = :pending',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: { ':s': status, ':at': at, ':pending': 'pending' },
        }),
      );
      return true;
    } catch (e) {
      if (isConditionFailure(e)) return false;
      throw e;
    }
  }

  async markDelivered(requestId: string): Promise<void> {
    await this.ddb.send(new UpdateCommand({ TableName: this.table, Key: { requestId }, UpdateExpression: 'SET delivered = :y', ExpressionAttributeValues: { ':y': true } }));
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
    const items = await scanTable<ApprovalRecord & { taskToken?: string }>(this.ddb, this.table);
    return items.map(({ taskToken: _hidden, ...record }) => record);
  }
}
