import type { Duplex } from 'node:stream';
import { CONTROL, encodeData, encodeGoAway, encodePing, encodeSynReply, FLAG_FIN, HeaderCompressor, HeaderDecompressor, parseSynStream, SpdyFramer, SpdyProtocolError, type Headers, type SpdyFrame } from './spdy-codec';

/** The most streams one connection may open (exec opens five; port-forward two per connection). */
export const MAX_SPDY_STREAMS = 1024;
/** Data is written in frames of at most this size (what spdystream's readers expect from a kubelet). */
const DATA_FRAME_BYTES = 32 * 1024;

/** One stream the client opened: its headers, its data, and this side's writes. */
export interface SpdyStream {
  id: number;
  headers: Headers;
  onData(listener: (data: Buffer) => void): void;
  /** The client half-closed (FIN) or reset the stream. */
  onEnd(listener: () => void): void;
  write(data: Buffer): void;
  /** Half-closes this side (DATA with FIN). */
  end(): void;
}

interface StreamState extends SpdyStream {
  dataListeners: ((data: Buffer) => void)[];
  endListeners: (() => void)[];
  pending: Buffer[];
  remoteEnded: boolean;
  localEnded: boolean;
}

/**
 * The server side of a SPDY/3.1 connection as Kubernetes uses it: the client opens every stream;
 * each is accepted with an empty SYN_REPLY and handed to `onStream`. PINGs are answered; flow
 * control windows are not enforced (spdystream does not either).
 */
export class SpdyConnection {
  private readonly framer = new SpdyFramer();
  private readonly inflater = new HeaderDecompressor();
  private readonly deflater = new HeaderCompressor();
  private readonly streams = new Map<number, StreamState>();
  private lastStreamId = 0;
  private closed = false;
  private opened = 0;

  constructor(
    private readonly transport: Duplex,
    private readonly onStream: (stream: SpdyStream) => void,
    private readonly onClose: () => void,
  ) {
    transport.on('data', (chunk: Buffer) => {
      try {
        this.framer.push(chunk, (frame) => this.onFrame(frame));
      } catch {
        // Whatever the peer sent that cannot be read ends its connection, and only its connection.
        this.close();
      }
    });
    transport.on('close', () => this.closed || this.finish());
    transport.on('error', () => this.finish());
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.streams.values()) if (!s.remoteEnded) this.remoteEnd(s);
    this.onClose();
  }

  /** Sends GOAWAY and closes the transport (how the kubelet ends a finished exec). */
  close(): void {
    if (this.closed) return;
    this.send(encodeGoAway(this.lastStreamId));
    this.transport.end();
    this.finish();
  }

  private send(bytes: Buffer): void {
    if (!this.transport.destroyed && this.transport.writable) this.transport.write(bytes);
  }

  private remoteEnd(s: StreamState): void {
    s.remoteEnded = true;
    for (const l of s.endListeners) l();
  }

  private onFrame(frame: SpdyFrame): void {
    if (frame.type === 'data') {
      const s = this.streams.get(frame.streamId);
      if (!s || s.remoteEnded) return;
      if (frame.data.length) {
        if (s.dataListeners.length) for (const l of s.dataListeners) l(frame.data);
        else s.pending.push(frame.data);
      }
      if (frame.flags & FLAG_FIN) this.remoteEnd(s);
      return;
    }
    switch (frame.control) {
      case CONTROL.SYN_STREAM: {
        const { streamId, headerBlock } = parseSynStream(frame.body);
        const headers = this.inflater.decompress(headerBlock);
        if (++this.opened > MAX_SPDY_STREAMS) throw new SpdyProtocolError('too many streams');
        this.lastStreamId = Math.max(this.lastStreamId, streamId);
        const stream = this.stream(streamId, headers);
        this.send(encodeSynReply(streamId, this.deflater.compress(new Map())));
        if (frame.flags & FLAG_FIN) stream.remoteEnded = true;
        this.onStream(stream);
        return;
      }
      case CONTROL.RST_STREAM: {
        if (frame.body.length < 8) throw new SpdyProtocolError('short RST_STREAM');
        const s = this.streams.get(frame.body.readUInt32BE(0) & 0x7fffffff);
        if (s) {
          s.localEnded = true;
          if (!s.remoteEnded) this.remoteEnd(s);
        }
        return;
      }
      case CONTROL.PING:
        if (frame.body.length < 4) throw new SpdyProtocolError('short PING');
        this.send(encodePing(frame.body.readUInt32BE(0)));
        return;
      case CONTROL.GOAWAY:
        this.close();
        return;
      default:
        return;
    }
  }

  private stream(id: number, headers: Headers): StreamState {
    const state: StreamState = {
      id,
      headers,
      dataListeners: [],
      endListeners: [],
      pending: [],
      remoteEnded: false,
      localEnded: false,
      onData: (listener) => {
        state.dataListeners.push(listener);
        for (const p of state.pending.splice(0)) listener(p);
      },
      onEnd: (listener) => {
        if (state.remoteEnded) listener();
        else state.endListeners.push(listener);
      },
      write: (data) => {
        for (let offset = 0; !state.localEnded && offset < data.length; offset += DATA_FRAME_BYTES) this.send(encodeData(id, data.subarray(offset, offset + DATA_FRAME_BYTES)));
      },
      end: () => {
        if (state.localEnded) return;
        state.localEnded = true;
        this.send(encodeData(id, Buffer.alloc(0), FLAG_FIN));
      },
    };
    this.streams.set(id, state);
    return state;
  }
}
