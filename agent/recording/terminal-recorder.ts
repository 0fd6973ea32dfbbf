import type { Identity } from '../../core/identity/identity';
import type { ContentScanner } from '../../core/masking/scanner';
import { StreamMasker } from '../../core/masking/stream';
import { recordedIdentity, type SessionEvent } from '../sessions/events';
import { IdleFlushedMasking } from '../sessions/idle-flushed-masking';
import type { SessionRecorder } from './session-recorder';
import type { SessionSpool } from './spool';
import type { RecordingService } from './recording-service';

/**
 * The recording masks both of its tracks with the same look-behind, released after a longer quiet: a
 * person types a secret key by key (slower than a terminal prints one) and the terminal echoes each key
 * as output, so a short quiet would record the echoed secret a key at a time; no one waits on a recording.
 */
export const TERMINAL_RECORDING_IDLE_FLUSH_MS = 5_000;

export interface TerminalStart {
  readonly sessionId: string;
  readonly target: string;
  readonly protocol: 'ssh' | 'kubernetes';
  readonly identity: Identity;
  readonly width: number;
  readonly height: number;
  readonly command?: string;
  readonly term?: string;
  /** Detectors for the output and the input, when the subject is masked (output masked before it is recorded is masked again: a typed secret comes back as its echo). */
  readonly scanner?: ContentScanner;
  /** Keystrokes are recorded only when the policy asks (`recording: { input: true }`: they may hold passwords typed at prompts). */
  readonly recordInput?: boolean;
}

/**
 * A terminal session (SSH shell, `kubectl exec`) as asciicast v2 (docs.asciinema.org, "asciicast v2"):
 * a header line, then `[seconds, code, data]` events: `o` output, `i` input, `r` resize, `m` markers
 * for what twokey decided. Same spool, chunks and chain as Postgres sessions; only the lines differ.
 */
export class TerminalRecording implements SessionRecorder {
  private readonly spool: SessionSpool;
  private readonly started = Date.now();
  private readonly out: Track;
  private readonly in: Track | undefined;
  private ended = false;

  constructor(
    private readonly service: RecordingService,
    private readonly start: TerminalStart,
  ) {
    const identity = recordedIdentity(start.identity);
    const startedAt = new Date(this.started);
    this.spool = service.begin({ sessionId: start.sessionId, target: start.target, protocol: start.protocol, format: 'asciicast', identity, startedAt: startedAt.toISOString() });
    this.out = this.track((text) => this.line('o', text));
    this.in = start.recordInput ? this.track((text) => this.line('i', text)) : undefined;
    this.spool.append({
      version: 2,
      width: start.width,
      height: start.height,
      timestamp: Math.floor(this.started / 1000),
      title: `${identity.name} on ${start.target}${start.command ? `: ${start.command}` : ''}`,
      env: { TERM: start.term ?? 'xterm-256color', SHELL: '' },
    });
  }

  /** Whether keystrokes are recorded (protocols skip tapping their input when not). */
  get recordsInput(): boolean {
    return this.in !== undefined;
  }

  output(data: string): void {
    if (!this.ended) this.out.push(data);
  }

  input(data: string): void {
    if (!this.ended) this.in?.push(data);
  }

  resize(width: number, height: number): void {
    this.line('r', `${width}x${height}`);
  }

  /** A marker: what twokey decided (a blocked command, an approval), shown by players as a chapter. */
  mark(label: string): void {
    this.line('m', label);
  }

  /** A shared session event becomes a marker: decisions and approvals show as chapters. */
  event(e: SessionEvent): void {
    if (e.e === 'decision') this.mark(`${e.decision}${e.rule ? ` by ${e.rule}` : ''}: ${e.text}`);
    else this.mark(`approval ${e.requestId} ${e.outcome}${e.reviewers.length ? ` by ${e.reviewers.join(', ')}` : ''}`);
  }

  end(reason: string): void {
    if (this.ended) return;
    this.out.flush();
    this.in?.flush();
    this.mark(`session ended (${reason})`);
    this.ended = true;
    this.service.end(this.start.sessionId, true);
  }

  private line(code: 'o' | 'i' | 'r' | 'm', data: string): void {
    if (this.ended) return;
    this.spool.append([Number(((Date.now() - this.started) / 1000).toFixed(6)), code, data]);
  }

  /** One direction of the terminal (output or input), masked when the subject is. */
  private track(emit: (text: string) => void): Track {
    const scanner = this.start.scanner;
    return scanner ? new IdleFlushedMasking(new StreamMasker(scanner), TERMINAL_RECORDING_IDLE_FLUSH_MS, emit) : { push: emit, flush: () => undefined };
  }
}

type Track = Pick<IdleFlushedMasking, 'push' | 'flush'>;
