import type { ConnectionRecord, ConnectionStore } from './stores';

/** Connection records a warm instance keeps; past this, the oldest is forgotten first. */
export const MAX_KNOWN_CONNECTIONS = 1000;

/**
 * A connection store that keeps the records it has read or written. A record never changes: API
 * Gateway never reuses a connection id and delivers frames only on a connection that passed $connect,
 * where the record was written. So a warm instance need not read it from DynamoDB again for every
 * frame (heartbeats, upload URLs, approvals each cost a read). Deleting a record forgets it.
 */
export class KnownConnections implements ConnectionStore {
  private readonly known = new Map<string, ConnectionRecord>();

  constructor(
    private readonly store: ConnectionStore,
    private readonly max: number = MAX_KNOWN_CONNECTIONS,
  ) {}

  async put(record: ConnectionRecord): Promise<void> {
    await this.store.put(record);
    this.remember(record);
  }

  async get(connectionId: string): Promise<ConnectionRecord | undefined> {
    const known = this.known.get(connectionId);
    if (known) return known;
    const record = await this.store.get(connectionId);
    if (record) this.remember(record);
    return record;
  }

  async delete(connectionId: string): Promise<void> {
    this.known.delete(connectionId);
    await this.store.delete(connectionId);
  }

  list(): Promise<ConnectionRecord[]> {
    return this.store.list();
  }

  listForAgent(agent: string): Promise<ConnectionRecord[]> {
    return this.store.listForAgent(agent);
  }

  private remember(record: ConnectionRecord): void {
    if (this.known.size >= this.max && !this.known.has(record.connectionId)) {
      const oldest = this.known.keys().next();
      if (!oldest.done) this.known.delete(oldest.value);
    }
    this.known.set(record.connectionId, record);
  }
}
