import type { MaskedStream } from './session-masking';

/**
 * Output someone watches live (a terminal, a followed log) is masked with a look-behind: what is held
 * back goes out after this much quiet, so that a prompt or a log's last line shows at once.
 */
export const LIVE_IDLE_FLUSH_MS = 50;

/**
 * A text stream pushed through a stream masker: what is safe goes out at once; what its look-behind
 * holds back (a value that may go on in the next chunk) goes out after `idleFlushMs` of quiet, or at
 * `flush`. The quiet is the caller's: a live terminal must show a prompt soon, a recording can wait.
 */
export class IdleFlushedMasking {
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly masker: MaskedStream,
    private readonly idleFlushMs: number,
    private readonly emit: (text: string) => void,
  ) {}

  push(text: string): void {
    this.send(this.masker.push(text));
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.flush(), this.idleFlushMs);
  }

  /** Releases what the masker holds (the stream went quiet or ended). */
  flush(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    this.send(this.masker.flush());
  }

  private send(text: string): void {
    if (text) this.emit(text);
  }
}
