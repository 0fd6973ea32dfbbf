/** Streams (exec, attach, port-forward) awaiting approval that the agent remembers per listener. */
export const MAX_PENDING_STREAM_ASKS = 1_000;

/**
 * The stream requests sent for approval and not decided yet, by caller and request hash. kubectl
 * retries a refused WebSocket exec over SPDY at once: the retry is told the same request id instead
 * of mailing the reviewers twice. Entries expire with their approval's timeout; the oldest goes first
 * past MAX_PENDING_STREAM_ASKS.
 */
export class PendingStreamAsks {
  private readonly asks = new Map<string, { readonly requestId: string; readonly untilMs: number }>();

  find(key: string): string | undefined {
    const ask = this.asks.get(key);
    if (ask && ask.untilMs > Date.now()) return ask.requestId;
    this.asks.delete(key);
    return undefined;
  }

  add(key: string, requestId: string, ttlMs: number): void {
    this.asks.delete(key);
    this.asks.set(key, { requestId, untilMs: Date.now() + ttlMs });
    for (const oldest of this.asks.keys()) {
      if (this.asks.size <= MAX_PENDING_STREAM_ASKS) break;
      this.asks.delete(oldest);
    }
  }

  forget(key: string): void {
    this.asks.delete(key);
  }
}
