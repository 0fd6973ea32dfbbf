import { StringDecoder } from 'node:string_decoder';
import type { Readable, Writable } from 'node:stream';
import { IdleFlushedMasking, LIVE_IDLE_FLUSH_MS } from '../sessions/idle-flushed-masking';
import type { SessionMaskingHandle } from '../sessions/session-masking';

/** A relayed output stream (stdout or stderr): `finish` releases what masking still holds. */
export interface OutputRelay {
  finish(): void;
}

/**
 * Copies an upstream output stream to the caller with flow control. Under masking the text passes the
 * stream masker (a value split across packets is still found); what its look-behind holds goes out
 * after LIVE_IDLE_FLUSH_MS of quiet or at the end. Masked output is UTF-8 text: binary output of
 * a masked caller does not survive, unmasked output passes byte for byte. `tap` sees what the caller saw.
 */
export function relayOutput(from: Readable, to: Writable, masking: SessionMaskingHandle, tap: (data: Buffer | string) => void): OutputRelay {
  if (!masking.active) {
    from.on('data', (chunk: Buffer) => tap(chunk));
    from.pipe(to, { end: false });
    return { finish: () => undefined };
  }
  const decoder = new StringDecoder('utf8');
  const masked = new IdleFlushedMasking(masking.stream(), LIVE_IDLE_FLUSH_MS, (text) => {
    tap(text);
    if (!to.write(text)) holdUntilDrained(from, to);
  });
  from.on('data', (chunk: Buffer) => masked.push(decoder.write(chunk)));
  return {
    finish() {
      masked.push(decoder.end());
      masked.flush();
    },
  };
}

/** Flow control: `from` pauses until `to` drains (once, however many writes found it full). */
export function holdUntilDrained(from: Readable, to: Writable): void {
  if (from.isPaused()) return;
  from.pause();
  to.once('drain', () => from.resume());
}
