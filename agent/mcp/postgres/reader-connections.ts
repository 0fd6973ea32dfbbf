import type pg from 'pg';

/** A reader connection unused this long is closed (it holds a database connection upstream). */
export const READER_IDLE_MS = 5 * 60_000;

interface Reader {
  readonly token: string;
  readonly client: Promise<pg.Client>;
  idle: NodeJS.Timeout | undefined;
  busy: number;
}

/** Whether an error leaves the connection as it was (the database refused one statement, and said so). */
const statementOnly = (e: unknown): boolean => typeof (e as { code?: unknown }).code === 'string' && (e as { severity?: unknown }).severity === 'ERROR';

/**
 * One MCP session's read connections to the agent's Postgres listener, one per target, kept between
 * tool calls (one Postgres session, and one recording, per MCP session and target; no connection set
 * up per call). A connection is the caller's as their token proved it: a call with another token (a
 * refreshed one) opens a new one. A failure other than a statement's error closes it.
 */
export class ReaderConnections {
  private readonly readers = new Map<string, Reader>();
  private closed = false;

  constructor(private readonly open: (target: string, token: string) => Promise<pg.Client>) {}

  /** Runs `work` on the target's connection; `keep` false (a statement stopped midway) closes it afterwards. */
  async use<T>(target: string, token: string, work: (client: pg.Client) => Promise<{ value: T; keep: boolean }>): Promise<T> {
    if (this.closed) throw new Error('twokey: this MCP session has ended');
    let reader = this.readers.get(target);
    if (reader && reader.token !== token) {
      this.drop(target, reader);
      reader = undefined;
    }
    if (!reader) {
      reader = { token, client: this.open(target, token), idle: undefined, busy: 0 };
      this.readers.set(target, reader);
    }
    const current = reader;
    clearTimeout(current.idle);
    current.busy++;
    let keep = false;
    try {
      const client = await current.client;
      const done = await work(client);
      keep = done.keep;
      return done.value;
    } catch (e) {
      keep = statementOnly(e);
      throw e;
    } finally {
      current.busy--;
      if (!keep) this.drop(target, current);
      else if (current.busy === 0 && this.readers.get(target) === current) current.idle = setTimeout(() => this.drop(target, current), READER_IDLE_MS).unref();
    }
  }

  close(): void {
    this.closed = true;
    for (const [target, reader] of this.readers) this.drop(target, reader);
  }

  private drop(target: string, reader: Reader): void {
    clearTimeout(reader.idle);
    if (this.readers.get(target) === reader) this.readers.delete(target);
    void reader.client.then(
      (c) => c.end().catch(() => undefined),
      () => undefined,
    );
  }
}
