/**
 * DynamoDB tables, described once for both the CDK stack and local mode so that their key
 * schemas cannot drift apart. Names are logical; the deployed names come from environment variables.
 */
export interface TableDefinition {
  readonly logicalName: string;
  /** Environment variable through which handlers learn the physical table name. */
  readonly envVar: string;
  readonly partitionKey: { name: string; type: 'S' | 'N' };
  readonly sortKey?: { name: string; type: 'S' | 'N' };
  readonly stream?: boolean;
}

export const TABLES = {
  agents: { logicalName: 'Agents', envVar: 'TABLE_AGENTS', partitionKey: { name: 'name', type: 'S' } },
  connections: { logicalName: 'Connections', envVar: 'TABLE_CONNECTIONS', partitionKey: { name: 'connectionId', type: 'S' } },
  policies: {
    logicalName: 'Policies',
    envVar: 'TABLE_POLICIES',
    partitionKey: { name: 'policyName', type: 'S' },
    sortKey: { name: 'version', type: 'N' },
    stream: true,
  },
  approvals: { logicalName: 'Approvals', envVar: 'TABLE_APPROVALS', partitionKey: { name: 'requestId', type: 'S' } },
} as const satisfies Record<string, TableDefinition>;

export type TableKey = keyof typeof TABLES;
