import type { RecordingSettings } from '../../core/policy/schema';
import type { SessionRegistry } from './registry';

export const CANNOT_RECORD = "recording cannot proceed (the agent's spool is full) and the policy requires it";
export const LOST_EVENTS = 'recording lost events of this session (the recorder fell behind or stopped) and the policy requires it';

/** What strict recording needs of the recording service. */
export interface RecordingHealth {
  full(): boolean;
  onFull(listener: () => void): void;
  onLost(listener: (sessionId: string) => void): void;
}

/**
 * Strict recording for every protocol, in one place: a target whose policy says `strict` takes no new
 * session while the spool is full, and its running sessions end when the spool fills or when their
 * own recording lost events. Best-effort targets go on unrecorded.
 */
export function enforceStrictRecording(registry: SessionRegistry, recording: RecordingHealth, settings: (target: string) => RecordingSettings): void {
  const strict = (target: string): boolean => settings(target).mode === 'strict';
  registry.addCheck((target) => (strict(target) && recording.full() ? { kind: 'recording-unavailable', message: `twokey: ${CANNOT_RECORD}` } : undefined));
  recording.onFull(() => registry.closeWhere((s) => strict(s.target), CANNOT_RECORD));
  recording.onLost((sessionId) => registry.closeWhere((s) => s.id === sessionId && strict(s.target), LOST_EVENTS));
}
