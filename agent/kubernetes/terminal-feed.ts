import { StringDecoder } from 'node:string_decoder';

/** Where a terminal's bytes are recorded. */
export interface TerminalTap {
  output(text: string): void;
  input(text: string): void;
  resize(width: number, height: number): void;
}

/**
 * A terminal's streams (stdout, stderr, stdin, resize) as they pass over a WebSocket or SPDY relay,
 * fed to its recording: each stream decoded as UTF-8 on its own (a character may straddle two
 * messages), resize messages read as kubectl writes them (`{"Width":w,"Height":h}`).
 */
export class TerminalFeed {
  private readonly decoders = new Map<string, StringDecoder>();

  constructor(private readonly tap: TerminalTap) {}

  output(stream: 'stdout' | 'stderr', payload: Buffer): void {
    if (payload.length) this.tap.output(this.text(stream, payload));
  }

  input(payload: Buffer): void {
    if (payload.length) this.tap.input(this.text('stdin', payload));
  }

  resize(payload: Buffer): void {
    try {
      const size = JSON.parse(payload.toString('utf8')) as { Width?: unknown; Height?: unknown };
      if (typeof size.Width === 'number' && typeof size.Height === 'number') this.tap.resize(size.Width, size.Height);
    } catch {
      // A malformed resize is the API server's to refuse; the recording skips it.
    }
  }

  private text(stream: string, payload: Buffer): string {
    let d = this.decoders.get(stream);
    if (!d) this.decoders.set(stream, (d = new StringDecoder('utf8')));
    return d.write(payload);
  }
}
