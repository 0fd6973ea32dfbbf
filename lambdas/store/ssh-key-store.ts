import { DeleteCommand, GetCommand, PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { SshKeyType } from '../../core/ssh/public-key';
import { SshKeyTakenError } from '../domain/errors';
import { isConditionFailure, queryAll } from './dynamo-table';

/** A caller's registered SSH public key: whose it is, as their token said at registration, and until when. */
export interface SshKeyRecord {
  readonly fingerprint: string;
  /** A short handle for `twokey ssh-keys remove`. */
  readonly id: string;
  /** `principalKey` of the identity that registered it: only that identity lists or removes it. */
  readonly principal: string;
  readonly keyType: SshKeyType;
  /** `type base64`, without the comment. */
  readonly publicKey: string;
  readonly comment: string;
  readonly issuer: string;
  readonly subject: string;
  readonly name: string;
  readonly email?: string;
  readonly groups: readonly string[];
  readonly createdAt: string;
  readonly expiresAt: string;
}

export interface SshKeyStore {
  /**
   * Stores the key under its fingerprint. A fingerprint registered, unexpired, by another principal is
   * refused (SshKeyTakenError): one key names one identity. The same principal's is replaced.
   */
  put(record: SshKeyRecord, now: string): Promise<void>;
  get(fingerprint: string): Promise<SshKeyRecord | undefined>;
  /** One principal's keys (an index query, eventually consistent), expired ones included until DynamoDB's TTL removes them. */
  listForPrincipal(principal: string): Promise<SshKeyRecord[]>;
  /** Removes the key only if it is the principal's; false otherwise. */
  delete(fingerprint: string, principal: string): Promise<boolean>;
  /** Every stored key, read consistently (what agents are sent; one partition, no scan), expired ones included. */
  listAll(): Promise<SshKeyRecord[]>;
  /** Records that the keys changed at `atMs` (epoch ms); later times only. */
  markChanged(atMs: number): Promise<void>;
  /** When the keys last changed, if ever. */
  changedAt(): Promise<number | undefined>;
}

/** The partition of every key, and the item that says when they last changed (outside the key partition and the principal index). */
export const SSH_KEY_PARTITION = 'keys';
const CHANGED_MARKER = { keySet: 'changed', fingerprint: 'changed' } as const;

type StoredSshKey = SshKeyRecord & { keySet?: string; ttl?: number };
const PRINCIPAL_IS = 'principal = :p';
const asRecord = ({ keySet: _keySet, ttl: _ttl, ...record }: StoredSshKey): SshKeyRecord => record;
const keyOf = (fingerprint: string) => ({ keySet: SSH_KEY_PARTITION, fingerprint });

export class DynamoSshKeyStore implements SshKeyStore {
  constructor(
    private readonly ddb: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async put(record: SshKeyRecord, now: string): Promise<void> {
    try {
      await this.ddb.send(
        new PutCommand({
          TableName: this.table,
          // DynamoDB's TTL deletes it some time after it expired; readers filter expired keys themselves.
          Item: { ...keyOf(record.fingerprint), ...record, ttl: Math.ceil(Date.parse(record.expiresAt) / 1000) },
          ConditionExpression: 'attribute_not_exists(fingerprint) OR principal = :p OR expiresAt <= :now',
          ExpressionAttributeValues: { ':p': record.principal, ':now': now },
        }),
      );
    } catch (e) {
      if (isConditionFailure(e)) throw new SshKeyTakenError('this key is registered to another identity');
      throw e;
    }
  }

  async get(fingerprint: string): Promise<SshKeyRecord | undefined> {
    const out = await this.ddb.send(new GetCommand({ TableName: this.table, Key: keyOf(fingerprint), ConsistentRead: true }));
    return out.Item ? asRecord(out.Item as StoredSshKey) : undefined;
  }

  async listForPrincipal(principal: string): Promise<SshKeyRecord[]> {
    const items = await queryAll<StoredSshKey>(this.ddb, { TableName: this.table, IndexName: 'byPrincipal', KeyConditionExpression: PRINCIPAL_IS, ExpressionAttributeValues: { ':p': principal } });
    return items.map(asRecord);
  }

  async delete(fingerprint: string, principal: string): Promise<boolean> {
    try {
      await this.ddb.send(new DeleteCommand({ TableName: this.table, Key: keyOf(fingerprint), ConditionExpression: PRINCIPAL_IS, ExpressionAttributeValues: { ':p': principal } }));
      return true;
    } catch (e) {
      if (isConditionFailure(e)) return false;
      throw e;
    }
  }

  async listAll(): Promise<SshKeyRecord[]> {
    const items = await queryAll<StoredSshKey>(this.ddb, { TableName: this.table, KeyConditionExpression: 'keySet = :k', ExpressionAttributeValues: { ':k': SSH_KEY_PARTITION }, ConsistentRead: true });
    return items.map(asRecord);
  }

  async markChanged(atMs: number): Promise<void> {
    try {
      await this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: CHANGED_MARKER,
          UpdateExpression: 'SET changedAt = :t',
          ConditionExpression: 'attribute_not_exists(changedAt) OR changedAt < :t',
          ExpressionAttributeValues: { ':t': atMs },
        }),
      );
    } catch (e) {
      if (!isConditionFailure(e)) throw e;
    }
  }

  async changedAt(): Promise<number | undefined> {
    const out = await this.ddb.send(new GetCommand({ TableName: this.table, Key: CHANGED_MARKER, ConsistentRead: true }));
    return typeof out.Item?.changedAt === 'number' ? out.Item.changedAt : undefined;
  }
}

