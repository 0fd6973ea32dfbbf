/** What the SSH command classifier says of one exec command line. */
export interface CommandClassification {
  readonly class: 'read' | 'write' | 'unknown';
  readonly reason: string;
  readonly commands: readonly string[];
}

/** Fail-closed stand-in until the shell-word classifier (core/ssh) is merged: every command is a write. */
export function classifyCommand(command: string): CommandClassification {
  return { class: 'write', reason: 'no command classifier in this build: every command is a write', commands: [command] };
}
