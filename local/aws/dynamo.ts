import { CreateTableCommand, DynamoDBClient, ListTablesCommand, type CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import type { AddressInfo } from 'node:net';
import dynalite from 'dynalite';
import { TABLES, type TableDefinition } from '../../lambdas/store/table-definitions';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from './credentials';

export interface LocalDynamo {
  readonly endpoint: string;
  readonly tableNames: Record<keyof typeof TABLES, string>;
  stop(): Promise<void>;
}

const TABLE_PREFIX = 'twokey-';

function createTableInput(def: TableDefinition, name: string): CreateTableCommandInput {
  const keys = [def.partitionKey, ...(def.sortKey ? [def.sortKey] : [])];
  const indexKeys = (def.indexes ?? []).flatMap((ix) => [ix.partitionKey, ix.sortKey]);
  const attributes = new Map([...keys, ...indexKeys].map((k) => [k.name, k.type]));
  return {
    TableName: name,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [...attributes].map(([AttributeName, AttributeType]) => ({ AttributeName, AttributeType })),
    KeySchema: keys.map((k, i) => ({ AttributeName: k.name, KeyType: i === 0 ? 'HASH' : 'RANGE' })),
    GlobalSecondaryIndexes: def.indexes?.length
      ? def.indexes.map((ix) => ({
          IndexName: ix.name,
          KeySchema: [
            { AttributeName: ix.partitionKey.name, KeyType: 'HASH' as const },
            { AttributeName: ix.sortKey.name, KeyType: 'RANGE' as const },
          ],
          Projection: { ProjectionType: 'ALL' as const },
        }))
      : undefined,
  };
}

/** dynalite in-process (on disk under `path`, or in memory), with every twokey table created. */
export async function startLocalDynamo(options: { path?: string; port: number; host: string }): Promise<LocalDynamo> {
  const server = dynalite({ path: options.path, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const endpoint = `http://${options.host}:${port}`;
  const client = new DynamoDBClient({ endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
  const existing = new Set((await client.send(new ListTablesCommand({}))).TableNames ?? []);
  const tableNames = Object.fromEntries(
    Object.entries(TABLES).map(([key, def]) => [key, `${TABLE_PREFIX}${def.logicalName}`]),
  ) as Record<keyof typeof TABLES, string>;
  for (const [key, def] of Object.entries(TABLES) as [keyof typeof TABLES, TableDefinition][]) {
    if (!existing.has(tableNames[key])) await client.send(new CreateTableCommand(createTableInput(def, tableNames[key])));
  }
  client.destroy();
  return {
    endpoint,
    tableNames,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
