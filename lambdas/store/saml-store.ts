import { DeleteCommand, GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { isConditionFailure } from './dynamo-table';

/**
 * What the SAML service provider must remember between requests: the AuthnRequests it sent (a
 * response must answer one, once: `InResponseTo`) and the assertions it accepted (a replay cache).
 */
export interface SamlStore {
  saveRequest(requestId: string, createdAt: Date): Promise<void>;
  /** When the request was sent, if it was and has not been answered yet. */
  requestCreatedAt(requestId: string): Promise<string | undefined>;
  /** Marks the request answered: true for the first caller only. */
  takeRequest(requestId: string): Promise<boolean>;
  /** True the first time an assertion id is seen; kept until the assertion could no longer be accepted. */
  claimAssertion(assertionId: string, subject: string, keepUntil: Date): Promise<boolean>;
}

/**
 * Kept in the audit-events table: each accepted assertion is an audit record of a sign-in anyway,
 * and conditional writes make the first use win. A request's age is checked by the SAML library.
 */
export class DynamoSamlStore implements SamlStore {
  constructor(
    private readonly ddb: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async saveRequest(requestId: string, createdAt: Date): Promise<void> {
    await this.ddb.send(new PutCommand({ TableName: this.table, Item: { eventId: `saml-request:${requestId}`, action: 'saml.request', at: createdAt.toISOString() } }));
  }

  async requestCreatedAt(requestId: string): Promise<string | undefined> {
    const item = (await this.ddb.send(new GetCommand({ TableName: this.table, Key: { eventId: `saml-request:${requestId}` }, ConsistentRead: true }))).Item;
    return typeof item?.at === 'string' ? item.at : undefined;
  }

  async takeRequest(requestId: string): Promise<boolean> {
    try {
      await this.ddb.send(new DeleteCommand({ TableName: this.table, Key: { eventId: `saml-request:${requestId}` }, ConditionExpression: 'attribute_exists(eventId)' }));
      return true;
    } catch (e) {
      if (isConditionFailure(e)) return false;
      throw e;
    }
  }

  async claimAssertion(assertionId: string, subject: string, keepUntil: Date): Promise<boolean> {
    try {
      await this.ddb.send(
        new PutCommand({
          TableName: this.table,
          Item: { eventId: `saml-assertion:${assertionId}`, action: 'saml.sign-in', subject, at: new Date().toISOString(), expiresAt: keepUntil.toISOString() },
          ConditionExpression: 'attribute_not_exists(eventId)',
        }),
      );
      return true;
    } catch (e) {
      if (isConditionFailure(e)) return false;
      throw e;
    }
  }
}
