/** Storage interfaces the domain depends on. One DynamoDB implementation lives beside them. */
export interface AgentRecord {
  readonly name: string;
  readonly keyHash: string;
  readonly createdAt: string;
  readonly createdBy: string;
  readonly targets: readonly string[];
  readonly connectionId?: string;
  readonly connectedAt?: string;
  readonly lastSeenAt?: string;
  readonly agentVersion?: string;
}

export interface AgentStore {
  /** Creates the agent; with `replace`, overwrites the key of an existing one. Throws AgentExistsError otherwise. */
  create(record: AgentRecord, replace: boolean): Promise<void>;
  get(name: string): Promise<AgentRecord | undefined>;
  /** Removes the agent; false if there was none. */
  delete(name: string): Promise<boolean>;
  /** A page of agents in storage order, and the token of the next page while there is one. */
  list(page: { limit: number; next?: string }): Promise<{ agents: AgentRecord[]; next?: string }>;
  markConnected(name: string, connectionId: string, at: string): Promise<void>;
  /** Clears the connection only if it is still this one (a newer connection may have replaced it). */
  markDisconnected(name: string, connectionId: string): Promise<void>;
  recordHello(name: string, targets: readonly string[], agentVersion: string, at: string): Promise<void>;
  touch(name: string, at: string): Promise<void>;
}

export interface ConnectionRecord {
  readonly connectionId: string;
  readonly agent: string;
  readonly connectedAt: string;
}

export interface ConnectionStore {
  put(record: ConnectionRecord): Promise<void>;
  get(connectionId: string): Promise<ConnectionRecord | undefined>;
  delete(connectionId: string): Promise<void>;
  list(): Promise<ConnectionRecord[]>;
  /** The connections of one agent (an index query). */
  listForAgent(agent: string): Promise<ConnectionRecord[]>;
}

export interface PolicyRecord {
  readonly version: number;
  readonly source: string;
  readonly updatedAt: string;
  readonly updatedBy: string;
  /** The approval request that made this version (absent for the first policy and emergency changes). */
  readonly changeRequest?: string;
  /** Who approved it, or `emergency` with the reason. */
  readonly approvedBy?: readonly string[];
  readonly emergencyReason?: string;
}

export interface PolicyStore {
  latest(): Promise<PolicyRecord | undefined>;
  /** Writes `record.version`; throws VersionConflictError if that version exists already. */
  putVersion(record: PolicyRecord): Promise<void>;
}
