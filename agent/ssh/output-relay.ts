import { StringDecoder } from 'node:string_decoder';
import type { Readable, Writable } from 'node:stream';
import type { SessionMaskingHandle } from '../sessions/session-masking';
import { TERMINAL_IDLE_FLUSH_MS } from '../recording/terminal-recorder';

/** A relayed output stream (stdout or stderr): `finish` releases what masking still holds. */
export interface OutputRelay {
  finish(): void;
}

/**
 * Copies an upstream output stream to the caller with flow control. Under masking the text passes the
 * stream masker (a value split across packets is still found); what its look-behind holds goes out
 * after TERMINAL_IDLE_FLUSH_MS of quiet or at the end. Masked output is UTF-8 text: binary output of
 * a masked caller does not survive, unmasked output passes byte for byte. `tap` sees what the caller saw.
 */
export function relayOutput(from: Readable, to: Writable, masking: SessionMaskingHandle, tap: (text: string) => void): OutputRelay {
  if (!masking.active) {
    from.on('data', (chunk: Buffer) => tap(chunk.toString('utf8')));
    from.pipe(to, { end: false });
    return { finish: () => undefined };
  }
  const masker = masking.stream();
  const decoder = new StringDecoder('utf8');
  let idle: NodeJS.Timeout | undefined;
  const emit = (text: string): void => {
    if (!text) return;
    tap(text);
    if (!to.write(text)) {
      from.pause();
      to.once('drain', () => from.resume());
    }
  };
  const flush = (): void => {
    clearTimeout(idle);
    emit(masker.flush());
  };
  from.on('data', (chunk: Buffer) => {
    emit(masker.push(decoder.write(chunk)));
    clearTimeout(idle);
    idle = setTimeout(flush, TERMINAL_IDLE_FLUSH_MS);
  });
  return {
    finish() {
      emit(masker.push(decoder.end()));
      flush();
    },
  };
}
