import { headersBlock, SPDY_CONTROL, SpdyFrameReader, SpdyHeaderReader, synStream, type SpdyFrame } from '../../core/kubernetes/spdy-frames';
import type { TerminalFeed } from './terminal-feed';

/** Streams one exec or attach connection may open (kubectl opens error, stdin, stdout, stderr and resize). */
export const MAX_SPDY_TERMINAL_STREAMS = 16;
/** The longest resize message kept while its newline is awaited (`{"Width":65535,"Height":65535}` is 31 bytes). */
export const MAX_RESIZE_MESSAGE_BYTES = 1024;

/**
 * Reads an exec or attach over SPDY (remotecommand v2 to v5) for its recording, as the bytes pass:
 * kubectl opens each stream with a SYN_STREAM whose `streamtype` header names it; stdout and stderr
 * data from the API server are output, stdin data input, and the resize stream carries
 * newline-separated `{"Width","Height"}` messages. The relay itself is unchanged; a connection whose
 * frames cannot be read is reported (the relay then closes it: a terminal is not relayed unrecorded).
 */
export class SpdyTerminalReader {
  private readonly callerFrames = new SpdyFrameReader();
  private readonly upstreamFrames = new SpdyFrameReader();
  private readonly callerHeaders = new SpdyHeaderReader();
  private readonly streams = new Map<number, string>();
  private resizePending = '';

  constructor(private readonly feed: TerminalFeed) {}

  /** Bytes from kubectl; the reason when they cannot be read. */
  fromCaller(chunk: Buffer): string | undefined {
    const frames = this.callerFrames.push(chunk);
    if (!frames.ok) return frames.error;
    for (const frame of frames.value) {
      const failed = frame.kind === 'data' ? this.callerData(frame.streamId, frame.data) : this.callerControl(frame);
      if (failed) return failed;
    }
    return undefined;
  }

  /** Bytes from the API server; the reason when they cannot be read. Its header blocks (replies) name nothing the recording needs. */
  fromUpstream(chunk: Buffer): string | undefined {
    const frames = this.upstreamFrames.push(chunk);
    if (!frames.ok) return frames.error;
    for (const frame of frames.value) {
      if (frame.kind !== 'data') continue;
      const type = this.streams.get(frame.streamId);
      if (type === 'stdout' || type === 'stderr') this.feed.output(type, frame.data);
    }
    return undefined;
  }

  private callerControl(frame: Extract<SpdyFrame, { kind: 'control' }>): string | undefined {
    // Every header block kubectl sends is part of one zlib stream: each is read, in order, to keep it in step.
    if (frame.type === SPDY_CONTROL.SYN_STREAM) {
      const syn = synStream(frame.body);
      if (!syn.ok) return syn.error;
      const headers = this.callerHeaders.read(syn.value.headerBlock);
      if (!headers.ok) return headers.error;
      if (this.streams.has(syn.value.streamId)) return `SPDY stream ${syn.value.streamId} was opened twice`;
      if (this.streams.size >= MAX_SPDY_TERMINAL_STREAMS) return `over ${MAX_SPDY_TERMINAL_STREAMS} SPDY streams on one terminal`;
      this.streams.set(syn.value.streamId, headers.value.get('streamtype') ?? '');
      return undefined;
    }
    if (frame.type === SPDY_CONTROL.HEADERS || frame.type === SPDY_CONTROL.SYN_REPLY) {
      const block = headersBlock(frame.body);
      if (!block.ok) return block.error;
      const headers = this.callerHeaders.read(block.value);
      return headers.ok ? undefined : headers.error;
    }
    return undefined;
  }

  private callerData(streamId: number, data: Buffer): string | undefined {
    const type = this.streams.get(streamId);
    if (type === 'stdin') this.feed.input(data);
    if (type !== 'resize') return undefined;
    const lines = (this.resizePending + data.toString('latin1')).split('\n');
    this.resizePending = lines.pop() ?? '';
    if (this.resizePending.length > MAX_RESIZE_MESSAGE_BYTES) this.resizePending = '';
    for (const line of lines) this.feed.resize(Buffer.from(line, 'latin1'));
    return undefined;
  }
}
