import type { Identity } from '../../../core/identity/identity';
import type { RecordingSettings } from '../../../core/policy/schema';
import { startSession } from '../../../agent/sessions/lifecycle';
import { SessionRegistry, type LiveSession } from '../../../agent/sessions/registry';
import { CANNOT_RECORD, enforceStrictRecording, LOST_EVENTS, type RecordingHealth } from '../../../agent/sessions/strict-recording';
import type { SessionRecorder } from '../../../agent/recording/session-recorder';
import { identity } from '../../support/identities';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** A session that remembers why it was closed. */
function session(id: string, target: string, who: Identity = identity('alice', ['support'])): LiveSession & { closedWith: string[] } {
  const closedWith: string[] = [];
  return { id, target, protocol: 'postgres', identity: who, closedWith, close: (reason) => void closedWith.push(reason) };
}

/** The recording service's health as strict recording reads it: full or not, and its two signals. */
class SpoolHealth implements RecordingHealth {
  isFull = false;
  private readonly fullListeners: (() => void)[] = [];
  private readonly lostListeners: ((id: string) => void)[] = [];
  full = (): boolean => this.isFull;
  onFull(l: () => void): void {
    this.fullListeners.push(l);
  }
  onLost(l: (id: string) => void): void {
    this.lostListeners.push(l);
  }
  fill(): void {
    this.isFull = true;
    for (const l of this.fullListeners) l();
  }
  lose(id: string): void {
    for (const l of this.lostListeners) l(id);
  }
}

describe('session registry', () => {
  it('admits sessions, counts them per target and forgets the ones that ended', () => {
    const registry = new SessionRegistry();
    const a = session('a', 'db');
    const b = session('b', 'db');
    const c = session('c', 'host');
    for (const s of [a, b, c]) expect(registry.admit(s)).toBeUndefined();
    registry.remove(b);
    registry.remove(b);
    expect(registry.counts()).toEqual({ db: 1, host: 1 });
    expect(registry.get('a')).toBe(a);
    expect(registry.get('b')).toBeUndefined();
  });

  it('refuses a session past the per-target cap and admits it on another target', () => {
    const registry = new SessionRegistry(1);
    expect(registry.admit(session('a', 'db'))).toBeUndefined();
    expect(registry.admit(session('b', 'db'))).toEqual({ kind: 'too-many-sessions', message: 'twokey: db has 1 sessions, the most it takes' });
    expect(registry.admit(session('c', 'host'))).toBeUndefined();
  });

  it('closes the sessions a predicate picks, and all of them', () => {
    const registry = new SessionRegistry();
    const a = session('a', 'db');
    const b = session('b', 'host');
    registry.admit(a);
    registry.admit(b);
    expect(registry.closeWhere((s) => s.target === 'host', 'maintenance')).toBe(1);
    expect(b.closedWith).toEqual(['maintenance']);
    expect(registry.closeAll('the agent is stopping')).toBe(2);
    expect(a.closedWith).toEqual(['the agent is stopping']);
  });
});

describe('strict recording (every protocol)', () => {
  const modes: Record<string, RecordingSettings['mode']> = { db: 'strict', host: 'best-effort' };
  const settings = (target: string): RecordingSettings => ({ mode: modes[target] ?? 'best-effort', maxRowsPerStatement: 10 });

  it('refuses new sessions on a strict target while the spool is full; best-effort targets go on', () => {
    const registry = new SessionRegistry();
    const health = new SpoolHealth();
    enforceStrictRecording(registry, health, settings);
    health.isFull = true;
    expect(registry.admit(session('a', 'db'))).toEqual({ kind: 'recording-unavailable', message: `twokey: ${CANNOT_RECORD}` });
    expect(registry.admit(session('b', 'host'))).toBeUndefined();
  });

  it('ends running sessions of strict targets when the spool fills, and a session whose recording lost events', () => {
    const registry = new SessionRegistry();
    const health = new SpoolHealth();
    enforceStrictRecording(registry, health, settings);
    const strict1 = session('s1', 'db');
    const strict2 = session('s2', 'db');
    const relaxed = session('r', 'host');
    for (const s of [strict1, strict2, relaxed]) registry.admit(s);
    health.lose('s2');
    expect(strict2.closedWith).toEqual([LOST_EVENTS]);
    expect(strict1.closedWith).toEqual([]);
    health.lose('r');
    expect(relaxed.closedWith).toEqual([]);
    health.fill();
    expect(strict1.closedWith).toEqual([CANNOT_RECORD]);
    expect(relaxed.closedWith).toEqual([]);
  });
});

describe('session lifecycle', () => {
  it('records events between start and one end, and leaves the registry at the end', () => {
    const registry = new SessionRegistry();
    const seen: string[] = [];
    const recorder: SessionRecorder<string> = { event: (e) => void seen.push(e), end: (reason) => void seen.push(`end: ${reason}`) };
    const started = startSession<string>(registry, { id: 'x', target: 'db', protocol: 'ssh', identity: identity('alice', []), close: () => undefined, recorder: () => recorder }, quiet);
    if (!started.ok) throw new Error('refused');
    started.session.record('one');
    expect(registry.count('db')).toBe(1);
    started.session.end('client quit');
    started.session.end('again');
    started.session.record('late');
    expect(seen).toEqual(['one', 'end: client quit']);
    expect(registry.count('db')).toBe(0);
  });

  it('makes no recording for a refused session', () => {
    const registry = new SessionRegistry(0);
    let made = 0;
    const started = startSession(registry, { id: 'x', target: 'db', protocol: 'ssh', identity: identity('alice', []), close: () => undefined, recorder: () => (made++, undefined) }, quiet);
    expect(started.ok).toBe(false);
    expect(made).toBe(0);
  });
});
