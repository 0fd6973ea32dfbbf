import { randomUUID } from 'node:crypto';
import { noDecisionMessage, parsePendingNotice, pendingNotice, refusedOutcomeOf } from '../../../agent/approvals/approval-flow';

describe('approval notices read back by an in-process client (MCP)', () => {
  it('reads the request id, reviewer groups and wait from the notice a held request sends', () => {
    const id = randomUUID();
    expect(parsePendingNotice(pendingNotice(id, ['dba', 'security'], 900))).toEqual({ requestId: id, groups: ['dba', 'security'], timeoutSeconds: 900 });
  });

  it('reads no request from other notices, or from text that only resembles one', () => {
    expect(parsePendingNotice('twokey: running on the write credential inside your approved write window')).toBeUndefined();
    expect(parsePendingNotice(`${pendingNotice(randomUUID(), ['dba'], 900)} (and more)`)).toBeUndefined();
  });

  it('names the outcome of a refused request only for that request', () => {
    const id = randomUUID();
    expect(refusedOutcomeOf(`twokey: request ${id} denied by carol@example.com: not today`, id)).toBe('denied');
    expect(refusedOutcomeOf(`twokey: request ${id} expired`, id)).toBe('expired');
    expect(refusedOutcomeOf(`twokey: request ${randomUUID()} denied by carol@example.com`, id)).toBeUndefined();
  });

  it('names a request that got no decision within its timeout and the grace expired, only for that request', () => {
    const id = randomUUID();
    expect(refusedOutcomeOf(noDecisionMessage(id, 10), id)).toBe('expired');
    expect(refusedOutcomeOf(`${noDecisionMessage(id, 10)} (The request stays open: once approved, sending the identical request runs it once.)`, id)).toBe('expired');
    expect(refusedOutcomeOf(noDecisionMessage(randomUUID(), 10), id)).toBeUndefined();
  });
});
