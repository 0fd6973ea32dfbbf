import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/aws/credentials';
import { startLocalDynamo, type LocalDynamo } from '../../local/aws/dynamo';
import { DynamoApprovalStore } from '../../lambdas/store/approval-store';
import { DynamoSlackPostStore } from '../../lambdas/store/slack-post-store';

describe('conditional writes on the approvals table (dynalite)', () => {
  let dynamo: LocalDynamo;
  let ddb: DynamoDBDocumentClient;
  let store: DynamoSlackPostStore;
  let n = 0;

  beforeAll(async () => {
    dynamo = await startLocalDynamo({ port: 0, host: '127.0.0.1' });
    ddb = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: dynamo.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS }));
    store = new DynamoSlackPostStore(ddb, dynamo.tableNames.approvals);
  });
  afterAll(async () => {
    ddb.destroy();
    await dynamo.stop();
  });

  async function request(): Promise<string> {
    const requestId = `req-${++n}`;
    await ddb.send(new PutCommand({ TableName: dynamo.tableNames.approvals, Item: { requestId, status: 'pending' } }));
    return requestId;
  }

  it('lets one caller claim a Slack post to a place, and again only after it released the claim', async () => {
    const id = await request();

    const [a, b] = await Promise.all([store.claim(id, 'C0DBA'), store.claim(id, 'C0DBA')]);
    expect([a, b].sort()).toEqual([false, true]);
    expect(await store.claim(id, 'U0BOB')).toBe(true);
    await store.release(id, 'C0DBA');
    expect(await store.claim(id, 'C0DBA')).toBe(true);
  });

  it("claims a Slack message's outcome once, only for a message that was posted, and again after a release", async () => {
    const id = await request();
    await store.claim(id, 'C0DBA');
    expect(await store.claimOutcome(id, 'C0DBA', 'approved')).toBe(false);
    await store.posted(id, 'C0DBA', { channel: 'C0DBA', ts: '1.000001' });

    const [a, b] = await Promise.all([store.claimOutcome(id, 'C0DBA', 'approved'), store.claimOutcome(id, 'C0DBA', 'approved')]);
    expect([a, b].sort()).toEqual([false, true]);
    expect(await store.list(id)).toEqual({ C0DBA: { channel: 'C0DBA', ts: '1.000001', outcome: 'approved' } });
    await store.releaseOutcome(id, 'C0DBA');
    expect(await store.claimOutcome(id, 'C0DBA', 'approved')).toBe(true);
  });

  it('never creates a request by recording its task token or its sent links', async () => {
    const approvals = new DynamoApprovalStore(ddb, dynamo.tableNames.approvals, dynamo.tableNames.approvalInbox);

    await expect(approvals.setTaskToken('no-such-request', 'token')).rejects.toMatchObject({ name: 'ConditionalCheckFailedException' });
    await expect(approvals.markLinksSent('no-such-request')).rejects.toMatchObject({ name: 'ConditionalCheckFailedException' });

    expect(await approvals.get('no-such-request')).toBeUndefined();
  });

  it('claims no Slack post for a request that does not exist, and writes no item for it', async () => {
    expect(await store.claim('no-such-request', 'C0DBA')).toBe(false);
    await store.posted('no-such-request', 'C0DBA', { channel: 'C0DBA', ts: '1.1' });
    await store.release('no-such-request', 'C0DBA');
    await store.releaseOutcome('no-such-request', 'C0DBA');

    expect((await ddb.send(new GetCommand({ TableName: dynamo.tableNames.approvals, Key: { requestId: 'no-such-request' } }))).Item).toBeUndefined();
  });
});
