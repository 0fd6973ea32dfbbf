import type { ProtocolEvent, SessionRecorder } from '../recording/session-recorder';
import type { TerminalRecording } from '../recording/terminal-recorder';
import type { SessionEvent } from '../sessions/events';

/** What an SSH session records: the shared decision and approval events, and its own (a channel, an SFTP op, a forward). */
export type SshEvent = SessionEvent | ProtocolEvent;

const isShared = (e: SshEvent): e is SessionEvent => e.e === 'decision' || e.e === 'approval';

/**
 * An SSH session recorded as a terminal (asciicast): shared events become markers, SSH events
 * markers with their fields, output and resizes go to the terminal recording directly.
 */
export class TerminalSessionRecorder implements SessionRecorder<SshEvent> {
  constructor(readonly terminal: TerminalRecording) {}

  event(e: SshEvent): void {
    if (isShared(e)) return this.terminal.event(e);
    const { e: kind, ...fields } = e;
    this.terminal.mark(`${kind} ${JSON.stringify(fields)}`);
  }

  end(reason: string): void {
    this.terminal.end(reason);
  }
}
