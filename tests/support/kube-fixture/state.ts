import { admit, validate } from './admission';
import { clone, field, metadataOf, objects, nameOf, namespaceOf, text, type JsonObject } from './json';
import { kindByName, type ResourceKind } from './kinds';
import { PodLogs } from './logs';
import { withType, type RestContext } from './rest';
import { MAX_RECORDED_REQUESTS, type RecordedRequest } from './server';
import { badRequest, invalid } from './status';
import { ObjectStore } from './store';

/**
 * What tests (and the demo) see and steer of a running fixture: the objects, pod logs and the
 * files pods' shells read, and the requests that arrived.
 */
export class FixtureState {
  readonly store = new ObjectStore();
  readonly logs = new PodLogs();
  /** Every request the server received, oldest first (bounded). */
  readonly requests: RecordedRequest[] = [];
  /** Files every pod's shell can `cat`, by absolute path. */
  readonly files = new Map<string, string>([['/etc/hostname', 'fixture\n']]);
  private readonly removalListeners = new Set<(k: ResourceKind, object: JsonObject) => void>();
  private podAddress = 10;
  private serviceAddress = 10;

  readonly restContext: RestContext = {
    store: this.store,
    get now() {
      return Date.now();
    },
    nextAddress: (kind) => (kind === 'pod' ? `10.244.0.${this.podAddress++ % 250}` : `10.96.0.${this.serviceAddress++ % 250}`),
    onRemoved: (k, object) => {
      if (k.resource === 'pods') this.logs.drop(namespaceOf(object), nameOf(object));
      for (const l of this.removalListeners) l(k, object);
    },
  };

  record(request: RecordedRequest): void {
    this.requests.push(request);
    if (this.requests.length > MAX_RECORDED_REQUESTS) this.requests.shift();
  }

  /** Called when an object is deleted (exec and port-forward streams of a deleted pod end). */
  onRemoved(listener: (k: ResourceKind, object: JsonObject) => void): () => void {
    this.removalListeners.add(listener);
    return () => this.removalListeners.delete(listener);
  }

  private kindOf(object: JsonObject): ResourceKind {
    const k = kindByName(text(object.apiVersion) ?? '', text(object.kind) ?? '');
    if (!k) throw badRequest(`the fixture does not serve ${String(object.apiVersion)} ${String(object.kind)}`);
    return k;
  }

  /** Creates or replaces an object as the API would store it (defaults, status, validation), with no request. */
  put(object: JsonObject): JsonObject {
    const k = this.kindOf(object);
    const copy = clone(object);
    const problems = validate(k, copy);
    if (problems.length) throw invalid(k.kind, k.group, nameOf(copy), problems);
    const existing = this.store.get(k, k.namespaced ? namespaceOf(copy) || 'default' : '', nameOf(copy));
    if (k.namespaced && !namespaceOf(copy)) metadataOf(copy).namespace = 'default';
    return withType(k, this.store.write(k, admit(k, withType(k, copy), existing, this.restContext), existing ? 'MODIFIED' : 'ADDED'));
  }

  get(apiVersion: string, kind: string, namespace: string, name: string): JsonObject | undefined {
    const k = kindByName(apiVersion, kind);
    const found = k ? this.store.get(k, k.namespaced ? namespace : '', name) : undefined;
    return k && found ? withType(k, found) : undefined;
  }

  /** Deletes an object as the API would (watchers see DELETED; a pod's log followers and streams end). */
  remove(apiVersion: string, kind: string, namespace: string, name: string): JsonObject | undefined {
    const k = kindByName(apiVersion, kind);
    const gone = k ? this.store.remove(k, k.namespaced ? namespace : '', name) : undefined;
    if (!k || !gone) return undefined;
    this.restContext.onRemoved(k, gone);
    return withType(k, gone);
  }

  /** Appends text to a pod container's log (the first container when none is named); followers see it at once. */
  appendLog(namespace: string, pod: string, chunk: string, container?: string): void {
    const k = kindByName('v1', 'Pod') as ResourceKind;
    const found = this.store.get(k, namespace, pod);
    const first = text(objects(field(found, 'spec').containers)[0]?.name);
    this.logs.append(namespace, pod, container ?? first ?? pod, chunk, Date.now());
  }
}
