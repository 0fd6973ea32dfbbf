import { GetCommand, PutCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { PolicyChangeResult } from '../../core/approval/policy-change';
import type { ApprovalRecord, ApprovalStatus, ApprovalSummary } from '../../core/approval/request';
import type { Vote } from '../../core/approval/votes';
import { principalKey } from '../../core/identity/identity';
import { batchGetAll, isConditionFailure, putIfAbsent, queryAll, scanTable } from './dynamo-table';
import { monthOf, pageByMonth } from './month-pages';
import { encodePageToken, pageLimit, positionFor } from './page-token';

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
  /** Requests still pending (local mode resumes their workflows when it starts). */
  pending(): Promise<ApprovalRecord[]>;
  /** A page of the requests `principal` made or reviews, newest first (its inbox: one partition). */
  listFor(principal: string, page: { limit: number; next?: string }): Promise<ApprovalPage>;
  /** A page of every request, newest first (by month); with `policyChangesOr`, only policy changes and that principal's own. */
  listAll(page: { limit: number; next?: string }, only?: { policyChangesOr: string }): Promise<ApprovalPage>;
  /** Decided requests of `agent` whose decision it has not acknowledged (an index query, for every hello). */
  undelivered(agent: string): Promise<ApprovalRecord[]>;
}

export interface ApprovalPage {
  readonly approvals: ApprovalSummary[];
  readonly next?: string;
}

export const MAX_PREVIEW_CHARS = 200;

/** The attributes a summary is read with (a projection: the texts are never read for a listing). */
const SUMMARY_ATTRIBUTES = ['requestId', 'kind', 'agent', 'target', 'status', 'requester', 'reviewers', 'votes', 'approval', 'reason', 'createdAt', 'expiresAt', 'decidedAt', 'preview', 'ttl'] as const;
const SUMMARY_CHANGE_ATTRIBUTES = ['baseVersion', 'added', 'removed', 'result', 'emergencyReason'] as const;
const SUMMARY_NAMES: Record<string, string> = Object.fromEntries([...SUMMARY_ATTRIBUTES, 'policyChange', ...SUMMARY_CHANGE_ATTRIBUTES].map((a) => [`#${a}`, a]));
const SUMMARY_PROJECTION = [...SUMMARY_ATTRIBUTES.map((a) => `#${a}`), ...SUMMARY_CHANGE_ATTRIBUTES.map((a) => `#policyChange.#${a}`)].join(', ');

/** A decided request is kept this long after its decision, then DynamoDB's TTL deletes it (the audit trail is the recordings and logs). */
export const DECIDED_APPROVAL_RETENTION_DAYS = 400;

/** A listing walks the byMonth index back this far: every month a retained decided request can be from. */
export const APPROVAL_LISTING_MONTHS = Math.ceil(DECIDED_APPROVAL_RETENTION_DAYS / 28) + 1;
/** An inbox item outlives its request's latest possible decision by the retention, then TTL deletes it. */
const SECONDS_PER_DAY = 86_400;
const DECIDED_APPROVAL_RETENTION_SECONDS = DECIDED_APPROVAL_RETENTION_DAYS * SECONDS_PER_DAY;
const INBOX_RETENTION_SECONDS = DECIDED_APPROVAL_RETENTION_SECONDS + SECONDS_PER_DAY;
const epochSeconds = (iso: string): number => Math.floor(Date.parse(iso) / 1000);

type StoredApproval = ApprovalRecord & { taskToken?: string; undeliveredAgent?: string; ttl?: number; month?: string; preview?: string; principals?: string[]; slackPosts?: unknown };

/** The task token stays in the table; index, listing and TTL attributes and the Slack messages (slack-post-store.ts) are storage's own. */
const withoutStorage = ({ taskToken: _token, undeliveredAgent: _index, ttl: _ttl, month: _month, preview: _preview, principals: _principals, slackPosts: _slack, ...record }: StoredApproval): ApprovalRecord => record;

/** DynamoDB's TTL deletes within days of expiry, and dynalite never: an expired item is not listed. */
const live = (item: { ttl?: unknown }, nowSeconds: number): boolean => typeof item.ttl !== 'number' || item.ttl > nowSeconds;
const nowSeconds = (): number => Math.floor(Date.now() / 1000);

const summaryOf = (item: Record<string, unknown>): ApprovalSummary => {
  const { ttl: _ttl, ...summary } = item as unknown as ApprovalSummary & { ttl?: number };
  return summary;
};

/** The principals whose inboxes list a request: its requester and each reviewer. */
const inboxPrincipals = (record: Pick<ApprovalRecord, 'requester' | 'reviewers'>): string[] => [...new Set([record.requester, ...record.reviewers].map(principalKey))];

export class DynamoApprovalStore implements ApprovalStore {
  constructor(
    private readonly ddb: DynamoDBDocumentClient,
    private readonly table: string,
    private readonly inboxTable: string,
  ) {}

  /**
   * The request, then an inbox item for each of its principals. A retry (the request exists) writes the
   * stored request's inbox items again, so that a write lost between the two is made up, and never
   * the retrying caller's (a different request reusing the id lists nothing of it for anyone).
   */
  async create(record: ApprovalRecord): Promise<'created' | 'exists'> {
    const created = await putIfAbsent(this.ddb, this.table, { ...record, month: monthOf(record.createdAt), preview: record.text.slice(0, MAX_PREVIEW_CHARS), principals: inboxPrincipals(record) }, 'requestId');
    const stored = created === 'created' ? record : await this.get(record.requestId);
    if (stored) await this.writeInbox(stored);
    return created;
  }

  private async writeInbox(record: ApprovalRecord): Promise<void> {
    const ttl = epochSeconds(record.expiresAt) + INBOX_RETENTION_SECONDS;
    for (const principal of inboxPrincipals(record)) {
      await this.ddb.send(new PutCommand({ TableName: this.inboxTable, Item: { principal, entry: `${record.createdAt}|${record.requestId}`, requestId: record.requestId, ttl } }));
    }
  }

  async get(requestId: string): Promise<ApprovalRecord | undefined> {
    const out = await this.ddb.send(new GetCommand({ TableName: this.table, Key: { requestId }, ConsistentRead: true }));
    return out.Item ? withoutStorage(out.Item as StoredApproval) : undefined;
  }

  async setTaskToken(requestId: string, taskToken: string): Promise<void> {
    // Conditional, as every write of a request after its creation: an update of a missing item would create one.
    await this.ddb.send(new UpdateCommand({ TableName: this.table, Key: { requestId }, UpdateExpression: 'SET taskToken = :t', ConditionExpression: 'attribute_exists(requestId)', ExpressionAttributeValues: { ':t': taskToken } }));
  }

  async getTaskToken(requestId: string): Promise<string | undefined> {
    const out = await this.ddb.send(new GetCommand({ TableName: this.table, Key: { requestId }, ConsistentRead: true, ProjectionExpression: 'taskToken' }));
    return out.Item?.taskToken as string | undefined;
  }

  async markLinksSent(requestId: string): Promise<void> {
    await this.ddb.send(new UpdateCommand({ TableName: this.table, Key: { requestId }, UpdateExpression: 'SET linksSent = :y', ConditionExpression: 'attribute_exists(requestId)', ExpressionAttributeValues: { ':y': true } }));
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
          ExpressionAttributeValues: { ':s': status, ':at': at, ':pending': 'pending', ':ttl': epochSeconds(at) + DECIDED_APPROVAL_RETENTION_SECONDS },
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

  async pending(): Promise<ApprovalRecord[]> {
    return (await scanTable<StoredApproval>(this.ddb, this.table)).filter((r) => r.status === 'pending').map(withoutStorage);
  }

  async listFor(principal: string, page: { limit: number; next?: string }): Promise<ApprovalPage> {
    const position = positionFor(page.next, { keys: ['principal', 'entry'], equal: { principal } });
    const now = nowSeconds();
    const out = await this.ddb.send(
      new QueryCommand({
        TableName: this.inboxTable,
        KeyConditionExpression: '#p = :p',
        FilterExpression: 'attribute_not_exists(#ttl) OR #ttl > :now',
        ExpressionAttributeNames: { '#p': 'principal', '#ttl': 'ttl' },
        ExpressionAttributeValues: { ':p': principal, ':now': now },
        ScanIndexForward: false,
        Limit: pageLimit(page.limit),
        ExclusiveStartKey: position.key,
      }),
    );
    const ids = (out.Items ?? []).map((i) => i.requestId as string);
    const found = await batchGetAll(this.ddb, this.table, 'requestId', ids, { expression: SUMMARY_PROJECTION, names: SUMMARY_NAMES });
    const byId = new Map(found.map((item) => [item.requestId as string, item]));
    // The inbox says where to look; the request itself says who may see it.
    const approvals = ids
      .map((id) => byId.get(id))
      .filter((item): item is Record<string, unknown> => item !== undefined && live(item, now))
      .map(summaryOf)
      .filter((r) => inboxPrincipals(r).includes(principal));
    return { approvals, ...(out.LastEvaluatedKey ? { next: encodePageToken({ key: out.LastEvaluatedKey as Record<string, string> }) } : {}) };
  }

  async listAll(page: { limit: number; next?: string }, only?: { policyChangesOr: string }): Promise<ApprovalPage> {
    const filter = {
      expression: `(attribute_not_exists(#ttl) OR #ttl > :now)${only ? ' AND (#kind = :change OR contains(#principals, :me))' : ''}`,
      names: { '#ttl': 'ttl', ...(only ? { '#kind': 'kind', '#principals': 'principals' } : {}) },
      values: { ':now': nowSeconds(), ...(only ? { ':change': 'policy-change', ':me': only.policyChangesOr } : {}) },
    };
    const listed = await pageByMonth(
      this.ddb,
      { table: this.table, index: 'byMonth', sortKey: 'createdAt', tableKey: 'requestId', months: APPROVAL_LISTING_MONTHS, filter, projection: SUMMARY_PROJECTION, projectionNames: SUMMARY_NAMES },
      page,
    );
    return { approvals: listed.items.map(summaryOf), ...(listed.next ? { next: listed.next } : {}) };
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
