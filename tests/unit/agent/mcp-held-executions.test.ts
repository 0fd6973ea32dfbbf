import { randomUUID } from 'node:crypto';
import { HeldExecutions, MAX_TRACKED_EXECUTIONS, MAX_TRACKED_EXECUTIONS_PER_CALLER, type Execution } from '../../../agent/mcp/held-executions';

const execution = (status: Execution['status']): Execution => ({ requestId: randomUUID(), target: 't', reviewers: ['dba'], expiresAt: new Date().toISOString(), status });

/** Tracks a request as the toolsets do (pending when sent), then decides it unless it stays pending. */
function sendAndDecide(held: HeldExecutions, caller: string, status: Execution['status'] = 'approved'): Execution {
  const e = execution('pending');
  held.track(caller, e);
  e.status = status;
  return e;
}

describe('the requests MCP callers can ask the status of', () => {
  it('forgets a caller\'s oldest decided requests beyond their own limit, never a pending one', () => {
    const held = new HeldExecutions();
    const waiting = sendAndDecide(held, 'alice', 'pending');
    const decided = Array.from({ length: MAX_TRACKED_EXECUTIONS_PER_CALLER + 5 }, () => sendAndDecide(held, 'alice'));
    sendAndDecide(held, 'alice');
    expect(held.get('alice', waiting.requestId)).toBe(waiting);
    expect(decided.slice(0, 6).map((e) => held.get('alice', e.requestId))).toEqual(Array(6).fill(undefined));
    expect(held.get('alice', decided[decided.length - 1]!.requestId)).toBeDefined();
  });

  it('keeps at most MAX_TRACKED_EXECUTIONS decided requests over all callers, forgetting the oldest first', () => {
    const held = new HeldExecutions();
    const callers = Math.ceil(MAX_TRACKED_EXECUTIONS / MAX_TRACKED_EXECUTIONS_PER_CALLER) + 2;
    const sent: Array<[string, Execution]> = [];
    for (let i = 0; i < callers * MAX_TRACKED_EXECUTIONS_PER_CALLER; i++) {
      const caller = `caller-${i % callers}`;
      sent.push([caller, sendAndDecide(held, caller)]);
    }
    const kept = sent.filter(([caller, e]) => held.get(caller, e.requestId));
    expect(kept.length).toBeLessThanOrEqual(MAX_TRACKED_EXECUTIONS);
    expect(kept.length).toBeGreaterThanOrEqual(MAX_TRACKED_EXECUTIONS - 1);
    expect(kept.map(([, e]) => e)).toEqual(sent.slice(-kept.length).map(([, e]) => e));
  });

  it('keeps every pending request however many decided ones others send', () => {
    const held = new HeldExecutions();
    const waiting = sendAndDecide(held, 'alice', 'pending');
    for (let i = 0; i < MAX_TRACKED_EXECUTIONS + 10; i++) sendAndDecide(held, `caller-${i % 50}`);
    expect(held.get('alice', waiting.requestId)).toBe(waiting);
  });
});
