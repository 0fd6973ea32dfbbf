import type { Readable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Relayed bytes between two young-generation collections. */
export const SCAVENGE_EVERY_BYTES = 8 * 1024 * 1024;

/** V8's collection function with the options form Node 20's V8 accepts. */
export type MinorCollection = (options: { type: 'minor' }) => void;

/**
 * V8's `gc`, reachable without starting Node with --expose-gc: the flag set at run time exposes it to
 * contexts made afterwards. Undefined where that is refused, and the relay then runs without it.
 */
export function minorCollection(): MinorCollection | undefined {
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    return typeof gc === 'function' ? (gc as MinorCollection) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A relay's reads each leave a Buffer that dies at once (ssh2 allocates one per socket read, packet
 * and sent packet), but V8 frees those outside its heap only at a collection, and starts one only
 * after tens of megabytes of them: under a 100 MB transfer that pile was most of the SSH agent's peak
 * RSS. A young-generation collection after every `everyBytes` relayed keeps it small; with a small
 * live set one costs well under a millisecond (bench/RESULTS.md, bench:ssh).
 */
export class Scavenger {
  private sinceLast = 0;

  constructor(
    private readonly collect: MinorCollection | undefined,
    private readonly everyBytes = SCAVENGE_EVERY_BYTES,
  ) {}

  /** Counts what `stream` reads (its data listener adds to the relay's, which already reads it). */
  watch(stream: Readable): void {
    if (!this.collect) return;
    stream.on('data', (chunk: Buffer) => this.count(chunk.length));
  }

  count(bytes: number): void {
    this.sinceLast += bytes;
    if (this.sinceLast < this.everyBytes) return;
    this.sinceLast = 0;
    this.collect?.({ type: 'minor' });
  }
}

let shared: Scavenger | undefined;
/** The agent's one scavenger: every relayed connection counts toward the same collections. */
export function relayScavenger(): Scavenger {
  shared ??= new Scavenger(minorCollection());
  return shared;
}
