import { StringDecoder } from 'node:string_decoder';

/** One direction of a terminal channel as the recording sees it, up to a cap. */
export interface RecordedTap {
  tap(data: Buffer | string): void;
  /** Bytes that came after the cap and were not recorded. */
  readonly left: number;
}

/**
 * Like a statement's rows, a channel's output (or the caller's input) is recorded up to a cap: a 100 MB
 * `cat` is not kept twice. Cut at the cap exactly; bytes are decoded as UTF-8 across chunks, so a
 * character split between packets is kept whole (one split at the cap shows as U+FFFD).
 */
export function recordedTap(limitBytes: number, record: (text: string) => void): RecordedTap {
  const decoder = new StringDecoder('utf8');
  let seen = 0;
  return {
    tap(data) {
      const bytes = typeof data === 'string' ? Buffer.from(data) : data;
      if (seen < limitBytes) {
        const kept = bytes.subarray(0, limitBytes - seen);
        const text = kept.length < bytes.length ? decoder.write(kept) + decoder.end() : decoder.write(kept);
        if (text) record(text);
      }
      seen += bytes.length;
    },
    get left() {
      return Math.max(0, seen - limitBytes);
    },
  };
}
