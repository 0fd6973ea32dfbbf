import type { ServerResponse } from 'node:http';
import type { JsonObject } from './json';
import { apiVersionOf } from './kinds';
import type { Rendering } from './negotiation';
import { renderValue } from './render';
import { selection, withType, type ResourceRequest, type RestContext } from './rest';
import { gone, type KubeStatus } from './status';
import type { StoredEvent } from './store';

/** The longest a watch stays open when the client names no timeout (the apiserver picks 30-60 min). */
export const MAX_WATCH_SECONDS = 1800;

export interface WatchOptions {
  bookmarkIntervalMs: number;
}

/** The watch cache's answer to a resourceVersion older than it keeps: an ERROR event holding a 410. */
const expired = (requested: number, oldest: number): { type: 'ERROR'; object: KubeStatus } => ({ type: 'ERROR', object: gone(`too old resource version: ${requested} (${oldest})`).status });

/**
 * `?watch=1`: a chunked stream of `{"type","object"}` lines. Without a resourceVersion (or "0") it
 * starts with ADDED for what exists; with one it replays the kept history after it, or sends a 410
 * ERROR event when that is compacted away. BOOKMARK events when asked; `timeoutSeconds` ends it.
 */
export function serveWatch(ctx: RestContext, req: ResourceRequest, rendering: Extract<Rendering, { form: 'object' | 'table' }>, res: ServerResponse, closed: Promise<void>, options: WatchOptions): void {
  const k = req.info.kind;
  const selected = selection(req);
  const query = req.query;
  const bookmarks = query.get('allowWatchBookmarks') === 'true';
  const rv = query.get('resourceVersion') ?? '';
  const initial = query.get('sendInitialEvents') === 'true' || rv === '' || rv === '0';
  res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' });
  res.flushHeaders();
  const render = (o: JsonObject): JsonObject => (rendering.form === 'table' ? renderValue(k, withType(k, o), false, rendering, ctx.now) : withType(k, o));
  const send = (event: object): void => {
    res.write(`${JSON.stringify(event)}\n`);
  };
  let lastSent = ctx.store.resourceVersion;
  const emit = (e: StoredEvent): void => {
    if (e.kind !== k) return;
    const now = selected(e.object);
    const before = e.previous ? selected(e.previous) : false;
    lastSent = e.resourceVersion;
    if (e.type === 'MODIFIED' && now !== before) send({ type: now ? 'ADDED' : 'DELETED', object: render(now || !e.previous ? e.object : { ...e.previous, metadata: e.object.metadata ?? {} }) });
    else if (now) send({ type: e.type, object: render(e.object) });
  };
  const bookmark = (annotations?: Record<string, string>): void =>
    send({ type: 'BOOKMARK', object: { kind: k.kind, apiVersion: apiVersionOf(k), metadata: { resourceVersion: String(lastSent), ...(annotations ? { annotations } : {}) } } });

  if (initial) {
    for (const o of ctx.store.list(k, req.info.namespace).filter(selected)) send({ type: 'ADDED', object: render(o) });
    if (query.get('sendInitialEvents') === 'true' && bookmarks) bookmark({ 'k8s.io/initial-events-end': 'true' });
  } else {
    const requested = Number(rv);
    const history = Number.isFinite(requested) ? ctx.store.since(requested) : undefined;
    if (!history) {
      send(expired(requested, ctx.store.oldestResumable));
      res.end();
      return;
    }
    history.forEach(emit);
  }
  const unsubscribe = ctx.store.subscribe(emit);
  const timers: NodeJS.Timeout[] = [];
  if (bookmarks) timers.push(setInterval(() => bookmark(), options.bookmarkIntervalMs));
  const timeout = Math.min(Number(query.get('timeoutSeconds') ?? MAX_WATCH_SECONDS) || MAX_WATCH_SECONDS, MAX_WATCH_SECONDS);
  const finish = (): void => {
    unsubscribe();
    timers.forEach(clearInterval);
    clearTimeout(ending);
    res.end();
  };
  const ending = setTimeout(finish, timeout * 1000);
  void closed.then(finish);
}
