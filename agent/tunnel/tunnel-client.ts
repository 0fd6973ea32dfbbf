import { WebSocket } from 'ws';
import {
  TUNNEL_PROTOCOL_VERSION,
  decodeControlMessage,
  encodeFrame,
  type AgentMessage,
  type ControlMessage,
} from '../../core/tunnel/messages';
import { err, ok, type Result } from '../../core/result';
import type { Logger } from '../../core/log';
import { reconnectDelayMs } from './backoff';

export const HEARTBEAT_INTERVAL_MS = 30_000;
export const HANDSHAKE_TIMEOUT_MS = 10_000;
/** A connection whose hello is not answered in this time is dropped and made again. */
export const HELLO_TIMEOUT_MS = 10_000;
/** Frames from the control plane are 32 KB at most; allow the 128 KB message limit and refuse more. */
const MAX_INCOMING_BYTES = 128 * 1024;

export interface TunnelOptions {
  readonly url: string;
  readonly key: string;
  readonly agentVersion: string;
  readonly targets: () => readonly string[];
  readonly policyVersion: () => number | undefined;
  readonly heartbeatIntervalMs?: number;
  readonly log: Logger;
}

type Handler = (message: ControlMessage) => void | Promise<void>;

/**
 * The agent's WebSocket to the control plane: says hello on every connect, heartbeats, and reconnects
 * with capped exponential backoff and jitter for ever. A bad frame is logged and dropped, never fatal.
 */
export class TunnelClient {
  private socket: WebSocket | undefined;
  private attempt = 0;
  private stopped = false;
  private heartbeat: NodeJS.Timeout | undefined;
  private retry: NodeJS.Timeout | undefined;
  private helloTimer: NodeJS.Timeout | undefined;
  private readonly handlers = new Set<Handler>();
  private connectedListeners = new Set<() => void>();

  constructor(private readonly options: TunnelOptions) {}

  get connected(): boolean {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  onMessage(handler: Handler): void {
    this.handlers.add(handler);
  }

  onConnected(listener: () => void): void {
    this.connectedListeners.add(listener);
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  send(message: AgentMessage): Result<void, Error> {
    const frame = encodeFrame(message);
    if (!frame.ok) return frame;
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return err(new Error('tunnel is not connected'));
    this.socket.send(frame.value);
    return ok(undefined);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    clearTimeout(this.helloTimer);
    clearInterval(this.heartbeat);
    const socket = this.socket;
    if (!socket || socket.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      socket.close(1000, 'agent stopping');
      setTimeout(() => {
        socket.terminate();
        resolve();
      }, 1000).unref();
    });
  }

  private connect(): void {
    if (this.stopped) return;
    const socket = new WebSocket(this.options.url, {
      headers: { authorization: `Bearer ${this.options.key}` },
      // The agent's key goes only to a verified control plane, whatever NODE_TLS_REJECT_UNAUTHORIZED says.
      rejectUnauthorized: true,
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
      maxPayload: MAX_INCOMING_BYTES,
    });
    this.socket = socket;
    socket.on('open', () => {
      this.options.log.info('tunnel.connected', { url: this.options.url });
      clearTimeout(this.helloTimer);
      this.helloTimer = setTimeout(() => {
        this.options.log.warn('tunnel.hello.unanswered', { afterMs: HELLO_TIMEOUT_MS });
        socket.terminate();
      }, HELLO_TIMEOUT_MS);
      this.send({
        type: 'hello',
        v: TUNNEL_PROTOCOL_VERSION,
        agentVersion: this.options.agentVersion,
        targets: [...this.options.targets()],
        policyVersion: this.options.policyVersion(),
      });
      clearInterval(this.heartbeat);
      this.heartbeat = setInterval(
        () => this.send({ type: 'heartbeat', v: TUNNEL_PROTOCOL_VERSION, sentAt: Date.now() }),
        this.options.heartbeatIntervalMs ?? HEARTBEAT_INTERVAL_MS,
      );
      for (const l of this.connectedListeners) l();
    });
    socket.on('message', (data) => {
      const decoded = decodeControlMessage(Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer));
      if (!decoded.ok) {
        this.options.log.warn('tunnel.bad-frame', { reason: decoded.error.message });
        return;
      }
      if (decoded.value.type === 'hello.ok') {
        this.attempt = 0;
        clearTimeout(this.helloTimer);
      }
      for (const h of this.handlers) {
        Promise.resolve(h(decoded.value)).catch((e: unknown) =>
          this.options.log.error('tunnel.handler.failed', { type: decoded.value.type, error: String(e) }),
        );
      }
    });
    socket.on('unexpected-response', (_req, res) => {
      this.options.log.warn('tunnel.refused', { status: res.statusCode });
      socket.terminate();
    });
    socket.on('error', (e) => this.options.log.warn('tunnel.error', { error: e.message }));
    socket.on('close', () => {
      clearInterval(this.heartbeat);
      clearTimeout(this.helloTimer);
      if (this.socket !== socket || this.stopped) return;
      const delay = reconnectDelayMs(this.attempt++);
      this.options.log.info('tunnel.reconnecting', { inMs: delay, attempt: this.attempt });
      this.retry = setTimeout(() => this.connect(), delay);
    });
  }
}
