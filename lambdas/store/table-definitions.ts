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
  /** A number attribute (epoch seconds) after which DynamoDB deletes the item. */
  readonly ttlAttribute?: string;
  readonly indexes?: readonly { name: string; partitionKey: { name: string; type: 'S' | 'N' }; sortKey: { name: string; type: 'S' | 'N' } }[];
}

export const TABLES = {
  agents: { logicalName: 'Agents', envVar: 'TABLE_AGENTS', partitionKey: { name: 'name', type: 'S' } },
  connections: {
    logicalName: 'Connections',
    envVar: 'TABLE_CONNECTIONS',
    partitionKey: { name: 'connectionId', type: 'S' },
    ttlAttribute: 'ttl',
    indexes: [{ name: 'byAgent', partitionKey: { name: 'agent', type: 'S' }, sortKey: { name: 'connectedAt', type: 'S' } }],
  },
  policies: {
    logicalName: 'Policies',
    envVar: 'TABLE_POLICIES',
    partitionKey: { name: 'policyName', type: 'S' },
    sortKey: { name: 'version', type: 'N' },
    stream: true,
  },
  approvals: {
    logicalName: 'Approvals',
    envVar: 'TABLE_APPROVALS',
    partitionKey: { name: 'requestId', type: 'S' },
    ttlAttribute: 'ttl',
    // Sparse: a decided request is in it until its agent acknowledged the decision.
    indexes: [
      { name: 'undeliveredByAgent', partitionKey: { name: 'undeliveredAgent', type: 'S' }, sortKey: { name: 'decidedAt', type: 'S' } },
      // Every request by the month it was made (yyyy-mm): what admins and auditors list, never a scan.
      { name: 'byMonth', partitionKey: { name: 'month', type: 'S' }, sortKey: { name: 'createdAt', type: 'S' } },
    ],
  },
  // One small item per request for its requester and for each reviewer (a GSI cannot index a list of
  // principals): a caller's listing is one partition, newest first.
  approvalInbox: {
    logicalName: 'ApprovalInbox',
    envVar: 'TABLE_APPROVAL_INBOX',
    partitionKey: { name: 'principal', type: 'S' },
    sortKey: { name: 'entry', type: 'S' },
    ttlAttribute: 'ttl',
  },
  sessions: {
    logicalName: 'Sessions',
    envVar: 'TABLE_SESSIONS',
    partitionKey: { name: 'sessionId', type: 'S' },
    indexes: [
      { name: 'byTarget', partitionKey: { name: 'target', type: 'S' }, sortKey: { name: 'startedAt', type: 'S' } },
      { name: 'byUser', partitionKey: { name: 'user', type: 'S' }, sortKey: { name: 'startedAt', type: 'S' } },
      // Every session by the month it started (yyyy-mm): listing without a target or user reads months, never the table.
      { name: 'byMonth', partitionKey: { name: 'month', type: 'S' }, sortKey: { name: 'startedAt', type: 'S' } },
    ],
  },
  recordingChunks: {
    logicalName: 'RecordingChunks',
    envVar: 'TABLE_RECORDING_CHUNKS',
    partitionKey: { name: 'sessionId', type: 'S' },
    sortKey: { name: 'seq', type: 'N' },
  },
  // Callers' SSH public keys: every key in one partition, by fingerprint (one key names one identity), so
  // that an agent's hello reads the whole set with one consistent query; the index lists one caller's
  // keys. Expired keys are deleted by TTL and filtered on read.
  sshKeys: {
    logicalName: 'SshKeys',
    envVar: 'TABLE_SSH_KEYS',
    partitionKey: { name: 'keySet', type: 'S' },
    sortKey: { name: 'fingerprint', type: 'S' },
    ttlAttribute: 'ttl',
    indexes: [{ name: 'byPrincipal', partitionKey: { name: 'principal', type: 'S' }, sortKey: { name: 'createdAt', type: 'S' } }],
  },
  auditEvents: { logicalName: 'AuditEvents', envVar: 'TABLE_AUDIT_EVENTS', partitionKey: { name: 'eventId', type: 'S' } },
} as const satisfies Record<string, TableDefinition>;

export type TableKey = keyof typeof TABLES;
