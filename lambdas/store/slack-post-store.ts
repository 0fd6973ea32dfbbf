import { GetCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { isConditionFailure } from './dynamo-table';

/** One place (a channel or a user) a request was posted to, and the message Slack made of it. */
export interface SlackPost {
  readonly channel?: string;
  readonly ts?: string;
  /** The outcome the message was updated to show, once. */
  readonly outcome?: string;
}

/**
 * Which Slack messages a request has, so that a retried notify step posts nothing twice and the
 * outcome (by button, link or timeout) reaches every message once. Conditional writes make the first
 * caller win; `claim` comes before the post, so a crash between the two loses that message (the mail
 * went out) rather than doubling it.
 */
export interface SlackPostStore {
  /** True for the first caller only: it posts to `place`. */
  claim(requestId: string, place: string): Promise<boolean>;
  /** The post failed: the place may be claimed again. */
  release(requestId: string, place: string): Promise<void>;
  posted(requestId: string, place: string, message: { channel: string; ts: string }): Promise<void>;
  list(requestId: string): Promise<Record<string, SlackPost>>;
  /** True for the first caller only, and only for a message that was posted: it shows `outcome`. */
  claimOutcome(requestId: string, place: string, outcome: string): Promise<boolean>;
  /** The update failed: a later attempt may claim it again. */
  releaseOutcome(requestId: string, place: string): Promise<void>;
}

const ATTRIBUTE = 'slackPosts';
/** Every write names the request: an update of a missing item would create one. */
const EXISTS = 'attribute_exists(requestId)';

/** In the approvals table, as a map on the request's item (one place per key). */
export class DynamoSlackPostStore implements SlackPostStore {
  constructor(
    private readonly ddb: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  private async update(requestId: string, expression: string, names: Record<string, string>, values: Record<string, unknown>, condition?: string): Promise<boolean> {
    try {
      await this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { requestId },
          UpdateExpression: expression,
          ConditionExpression: condition,
          ExpressionAttributeNames: { '#posts': ATTRIBUTE, ...names },
          ...(Object.keys(values).length > 0 ? { ExpressionAttributeValues: values } : {}),
        }),
      );
      return true;
    } catch (e) {
      if (condition && isConditionFailure(e)) return false;
      throw e;
    }
  }

  async claim(requestId: string, place: string): Promise<boolean> {
    // A nested path needs its map to exist first (an update cannot create both in one expression).
    if (!(await this.update(requestId, 'SET #posts = if_not_exists(#posts, :empty)', {}, { ':empty': {} }, EXISTS))) return false;
    return this.update(requestId, 'SET #posts.#p = :claim', { '#p': place }, { ':claim': {} }, `${EXISTS} AND attribute_not_exists(#posts.#p)`);
  }

  async release(requestId: string, place: string): Promise<void> {
    await this.update(requestId, 'REMOVE #posts.#p', { '#p': place }, {}, EXISTS);
  }

  async posted(requestId: string, place: string, message: { channel: string; ts: string }): Promise<void> {
    await this.update(requestId, 'SET #posts.#p = :m', { '#p': place }, { ':m': message }, EXISTS);
  }

  async list(requestId: string): Promise<Record<string, SlackPost>> {
    const out = await this.ddb.send(new GetCommand({ TableName: this.table, Key: { requestId }, ConsistentRead: true, ProjectionExpression: '#posts', ExpressionAttributeNames: { '#posts': ATTRIBUTE } }));
    return (out.Item?.[ATTRIBUTE] ?? {}) as Record<string, SlackPost>;
  }

  async claimOutcome(requestId: string, place: string, outcome: string): Promise<boolean> {
    return this.update(requestId, 'SET #posts.#p.#o = :o', { '#p': place, '#o': 'outcome', '#ts': 'ts' }, { ':o': outcome }, 'attribute_exists(#posts.#p.#ts) AND attribute_not_exists(#posts.#p.#o)');
  }

  async releaseOutcome(requestId: string, place: string): Promise<void> {
    await this.update(requestId, 'REMOVE #posts.#p.#o', { '#p': place, '#o': 'outcome' }, {}, EXISTS);
  }
}
