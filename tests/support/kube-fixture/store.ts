import { clone, ensure, metadataOf, nameOf, namespaceOf, type JsonObject } from './json';
import type { ResourceKind } from './kinds';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** One change, as etcd's revision history (and the watch cache) keeps it. */
export interface StoredEvent {
  type: WatchEventType;
  resourceVersion: number;
  kind: ResourceKind;
  object: JsonObject;
  /** The object before a MODIFIED change (watches with selectors turn moves out of the selection into DELETED). */
  previous?: JsonObject;
}

/** How many past changes watches can resume from; older resourceVersions get 410 Gone, like a compacted etcd. */
export const WATCH_HISTORY_EVENTS = 10_000;
const FIRST_RESOURCE_VERSION = 1000;

const keyOf = (k: ResourceKind, namespace: string, name: string): string => `${k.group}/${k.resource}/${namespace}/${name}`;

/**
 * The fixture's etcd: objects by kind, namespace and name, one global resourceVersion counter, a
 * bounded history of changes and the watchers fed from it. It stores what it is given; defaulting,
 * validation and permissions sit in front of it.
 */
export class ObjectStore {
  private readonly objects = new Map<string, JsonObject>();
  private readonly history: StoredEvent[] = [];
  private readonly watchers = new Set<(event: StoredEvent) => void>();
  private revision = FIRST_RESOURCE_VERSION;

  get resourceVersion(): number {
    return this.revision;
  }

  /** The oldest resourceVersion a watch can start after. */
  get oldestResumable(): number {
    return this.history[0] ? this.history[0].resourceVersion - 1 : this.revision;
  }

  get(k: ResourceKind, namespace: string, name: string): JsonObject | undefined {
    const found = this.objects.get(keyOf(k, namespace, name));
    return found ? clone(found) : undefined;
  }

  /** Objects of a kind (in one namespace, or all when `namespace` is undefined), ordered by namespace then name. */
  list(k: ResourceKind, namespace: string | undefined): JsonObject[] {
    const prefix = namespace === undefined ? `${k.group}/${k.resource}/` : `${k.group}/${k.resource}/${namespace}/`;
    return [...this.objects.entries()]
      .filter(([key]) => key.startsWith(prefix))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, o]) => clone(o));
  }

  /** Stores `object` (replacing any with its name), stamping the next resourceVersion; returns the stored copy. */
  write(k: ResourceKind, object: JsonObject, type: 'ADDED' | 'MODIFIED'): JsonObject {
    this.revision += 1;
    const stored = clone(object);
    ensure(stored, 'metadata').resourceVersion = String(this.revision);
    const key = keyOf(k, namespaceOf(stored), nameOf(stored));
    const previous = this.objects.get(key);
    this.objects.set(key, stored);
    this.record({ type, resourceVersion: this.revision, kind: k, object: stored, ...(previous ? { previous } : {}) });
    return clone(stored);
  }

  remove(k: ResourceKind, namespace: string, name: string): JsonObject | undefined {
    const key = keyOf(k, namespace, name);
    const existing = this.objects.get(key);
    if (!existing) return undefined;
    this.objects.delete(key);
    this.revision += 1;
    const gone = clone(existing);
    metadataOf(gone).resourceVersion = String(this.revision);
    this.record({ type: 'DELETED', resourceVersion: this.revision, kind: k, object: gone });
    return clone(gone);
  }

  /** Changes after `resourceVersion`, or undefined when they are no longer kept. */
  since(resourceVersion: number): StoredEvent[] | undefined {
    if (resourceVersion < this.oldestResumable) return undefined;
    return this.history.filter((e) => e.resourceVersion > resourceVersion);
  }

  subscribe(watcher: (event: StoredEvent) => void): () => void {
    this.watchers.add(watcher);
    return () => this.watchers.delete(watcher);
  }

  private record(event: StoredEvent): void {
    this.history.push(event);
    if (this.history.length > WATCH_HISTORY_EVENTS) this.history.shift();
    for (const w of this.watchers) w(event);
  }
}
