import { admitSession, MAX_MCP_SESSIONS, MAX_MCP_SESSIONS_PER_CALLER, type HeldSession } from '../../../agent/mcp/session-admission';

/** `count` sessions of `principal`, the first used longest ago (from `since`). */
const sessionsOf = (principal: string, count: number, since = 0): HeldSession[] => Array.from({ length: count }, (_, i) => ({ principal, lastUsed: since + i, busy: 0 }));

/** The agent filled by callers at their cap (the last one with what is left). */
const filledByHogs = (): HeldSession[] => Array.from({ length: Math.ceil(MAX_MCP_SESSIONS / MAX_MCP_SESSIONS_PER_CALLER) }, (_, c) => sessionsOf(`hog-${c}`, Math.min(MAX_MCP_SESSIONS_PER_CALLER, MAX_MCP_SESSIONS - c * MAX_MCP_SESSIONS_PER_CALLER), c * 1000)).flat();

describe('MCP session admission', () => {
  it('admits a caller below their cap while the agent has room, and refuses one at it with 429', () => {
    expect(admitSession(sessionsOf('ann', MAX_MCP_SESSIONS_PER_CALLER - 1), 'ann')).toEqual({ ok: true });
    expect(admitSession(sessionsOf('ann', MAX_MCP_SESSIONS_PER_CALLER), 'ann')).toMatchObject({ ok: false, status: 429, message: expect.stringMatching(/^twokey: you have 20 MCP sessions open/) });
  });

  it('lets a newcomer in when callers at their cap fill the agent, closing the least recently used idle session of the caller holding the most', () => {
    const open = filledByHogs();
    expect(open).toHaveLength(MAX_MCP_SESSIONS);
    const admitted = admitSession(open, 'newcomer');
    expect(admitted).toEqual({ ok: true, reclaim: open[0] });
  });

  it('prefers an idle session to one serving a request, and takes no session of a caller who would hold no more than the newcomer', () => {
    const open = filledByHogs();
    const first = open[0] as HeldSession;
    open[0] = { ...first, busy: 1 };
    expect(admitSession(open, 'newcomer')).toEqual({ ok: true, reclaim: open[1] });
    // Everyone holds one: nobody gives one up for a newcomer.
    const even = Array.from({ length: MAX_MCP_SESSIONS }, (_, i) => ({ principal: `user-${i}`, lastUsed: i, busy: 0 }));
    expect(admitSession(even, 'newcomer')).toMatchObject({ ok: false, status: 503, message: expect.stringMatching(/^twokey: the agent has 200 MCP sessions/) });
  });

  it('closes the least recently used busy session when the caller holding the most keeps every one busy', () => {
    const open = filledByHogs().map((x) => ({ ...x, busy: 1 }));
    expect(admitSession(open, 'newcomer')).toEqual({ ok: true, reclaim: open[0] });
  });

  it('does not let callers at the cap take sessions from each other, only even the shares out', () => {
    const open = filledByHogs();
    // hog-0 gave one up: it may not take one back from a caller holding just one more.
    const fewer = open.slice(1);
    fewer.push({ principal: 'newcomer', lastUsed: 99_999, busy: 0 });
    expect(admitSession(fewer, 'hog-0')).toMatchObject({ ok: false, status: 503 });
  });
});
