import type { ServerResponse } from 'node:http';
import { field, objects, text, type JsonObject } from './json';
import { badRequest } from './status';

/** The longest a pod's log grows before old lines are dropped (the kubelet rotates logs). */
export const MAX_LOG_LINES_PER_CONTAINER = 100_000;
/** What is logged already goes out in writes of about this size, not one per line. */
const LOG_WRITE_CHUNK_CHARS = 64 * 1024;

interface LogLine {
  at: string;
  text: string;
}

interface ContainerLog {
  lines: LogLine[];
  /** Called with each new line, and with undefined when the log ends (the pod is gone). */
  followers: Set<(line: LogLine | undefined) => void>;
}

/** Container logs by pod, as the kubelet would serve them through `pods/log`. */
export class PodLogs {
  private readonly logs = new Map<string, ContainerLog>();

  private log(namespace: string, pod: string, container: string): ContainerLog {
    const key = `${namespace}/${pod}/${container}`;
    let found = this.logs.get(key);
    if (!found) {
      found = { lines: [], followers: new Set() };
      this.logs.set(key, found);
    }
    return found;
  }

  /** Appends text (split into lines) to a container's log and to every follower's stream. */
  append(namespace: string, pod: string, container: string, chunk: string, now: number): void {
    const log = this.log(namespace, pod, container);
    for (const line of chunk.split('\n').filter((l, i, all) => l !== '' || i < all.length - 1)) {
      const entry = { at: new Date(now).toISOString().replace(/Z$/, '000000Z'), text: line };
      log.lines.push(entry);
      if (log.lines.length > MAX_LOG_LINES_PER_CONTAINER) log.lines.shift();
      for (const f of log.followers) f(entry);
    }
  }

  /** Ends every follower of a pod's logs and forgets them (the pod is gone). */
  drop(namespace: string, pod: string): void {
    for (const [key, log] of this.logs) {
      if (!key.startsWith(`${namespace}/${pod}/`)) continue;
      for (const f of log.followers) f(undefined);
      this.logs.delete(key);
    }
  }

  /**
   * `GET .../pods/{name}/log`: `container`, `tailLines`, `timestamps`, `limitBytes`, and `follow`,
   * which keeps the response open and writes each new line as it is appended.
   */
  async serve(pod: JsonObject, query: URLSearchParams, res: ServerResponse, closed: Promise<void>): Promise<void> {
    const metadata = field(pod, 'metadata');
    const name = text(metadata.name) ?? '';
    const names = objects(field(pod, 'spec').containers).map((c) => text(c.name) ?? '');
    const wanted = query.get('container') ?? (names.length === 1 ? names[0] : text(field(metadata, 'annotations')['kubectl.kubernetes.io/default-container']));
    if (!wanted) throw badRequest(`a container name must be specified for pod ${name}, choose one of: [${names.join(' ')}]`);
    if (!names.includes(wanted)) throw badRequest(`container ${wanted} is not valid for pod ${name}`);
    const log = this.log(text(metadata.namespace) ?? '', name, wanted);
    const timestamps = query.get('timestamps') === 'true';
    const tail = query.get('tailLines');
    let budget = query.get('limitBytes') ? Number(query.get('limitBytes')) : Infinity;
    const format = (l: LogLine): string => `${timestamps ? `${l.at} ` : ''}${l.text}\n`;
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' });
    /** Writes text within the `limitBytes` budget; false once it is spent. */
    const write = (out: string): boolean => {
      const slice = Buffer.from(out).subarray(0, Math.max(0, budget));
      budget -= slice.length;
      res.write(slice);
      return budget > 0;
    };
    const start = tail !== null ? Math.max(0, log.lines.length - Number(tail)) : 0;
    let chunk = '';
    for (const line of log.lines.slice(start)) {
      chunk += format(line);
      if (chunk.length < LOG_WRITE_CHUNK_CHARS) continue;
      if (!write(chunk)) return void res.end();
      chunk = '';
      // Keep to the client's pace: a long log is not buffered whole in the response.
      if (res.writableNeedDrain) await Promise.race([new Promise((resolve) => res.once('drain', resolve)), closed]);
      if (res.destroyed) return;
    }
    if (chunk && !write(chunk)) return void res.end();
    if (query.get('follow') !== 'true') return void res.end();
    const follower = (line: LogLine | undefined): void => {
      if (!line || !write(format(line))) {
        log.followers.delete(follower);
        res.end();
      }
    };
    log.followers.add(follower);
    void closed.then(() => log.followers.delete(follower));
  }
}
