/** A request a listener sent to reviewers on an in-process caller's behalf. */
export interface HeldRequest {
  readonly requestId: string;
  /** The reviewer groups it went to. */
  readonly groups: readonly string[];
  readonly timeoutSeconds: number;
}

/** How a caller reached a protocol listener when it was not with that protocol's own client. */
export interface CallerChannel {
  readonly via: 'mcp';
  /** The client as it named itself (the MCP handshake's name and version): shown, never trusted for access. */
  readonly client: string;
  /**
   * Told when the listener holds one of this connection's requests for review, for a protocol that
   * cannot say so in-band (an HTTP request has no answer until the decision).
   */
  readonly onHeld?: (request: HeldRequest) => void;
}

/** What a reviewer reads about the channel. */
export function channelText(channel: CallerChannel): string {
  return `an AI agent through MCP (client: ${channel.client})`;
}

/**
 * Connections the agent opens to its own listeners on a caller's behalf (the MCP endpoint's), known by
 * their socket's local address and port. A listener asks by the peer address and port it sees: only
 * this process holds that socket, so nothing the connection sends can claim a channel, or hide one.
 */
export class InProcessChannels {
  private readonly bySocket = new Map<string, CallerChannel>();

  /** Registers a connected socket; the returned function forgets it (call it when the connection ends). */
  register(localAddress: string, localPort: number, channel: CallerChannel): () => void {
    const key = `${localAddress}|${localPort}`;
    this.bySocket.set(key, channel);
    return () => {
      if (this.bySocket.get(key) === channel) this.bySocket.delete(key);
    };
  }

  of(remoteAddress: string | undefined, remotePort: number | undefined): CallerChannel | undefined {
    return remoteAddress === undefined || remotePort === undefined ? undefined : this.bySocket.get(`${remoteAddress}|${remotePort}`);
  }
}
