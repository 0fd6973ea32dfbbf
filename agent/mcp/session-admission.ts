/** MCP sessions the endpoint keeps at once (each may hold connections to listeners while it works). */
export const MAX_MCP_SESSIONS = 200;
/** MCP sessions one caller (principal) may hold at once, so that one caller cannot take all of them. */
export const MAX_MCP_SESSIONS_PER_CALLER = 20;

/** An open MCP session as admission sees it. */
export interface HeldSession {
  readonly principal: string;
  /** When it last took a request (ms). */
  readonly lastUsed: number;
  /** Requests it is serving now (a stream it keeps open for the client to listen on is not one). */
  readonly busy: number;
}

export type Admission<S extends HeldSession> =
  | { readonly ok: true; readonly reclaim?: S }
  | { readonly ok: false; readonly status: 429 | 503; readonly message: string };

/** Which session goes first: an idle one, then the least recently used (so keeping every session busy does not keep them all). */
const reclaimOrder = (x: HeldSession, y: HeldSession): number => Number(x.busy > 0) - Number(y.busy > 0) || x.lastUsed - y.lastUsed;

/**
 * Whether `principal` may open another MCP session. Past MAX_MCP_SESSIONS_PER_CALLER, no. When the
 * agent holds MAX_MCP_SESSIONS, a few callers at their cap could keep everyone else out: the caller
 * holding the most sessions (more than the newcomer would, once admitted) gives up the one it used
 * least recently, one serving nothing if it has one (its client starts a new one, as MCP clients do
 * when a session ends), so the sessions end up shared evenly; when no one holds more, the agent is full.
 */
export function admitSession<S extends HeldSession>(open: Iterable<S>, principal: string): Admission<S> {
  const byCaller = new Map<string, S[]>();
  let total = 0;
  for (const s of open) {
    total++;
    const list = byCaller.get(s.principal) ?? [];
    list.push(s);
    byCaller.set(s.principal, list);
  }
  const mine = byCaller.get(principal)?.length ?? 0;
  if (mine >= MAX_MCP_SESSIONS_PER_CALLER) {
    return { ok: false, status: 429, message: `twokey: you have ${MAX_MCP_SESSIONS_PER_CALLER} MCP sessions open, the most one caller may: end one (or wait for an idle one to close)` };
  }
  if (total < MAX_MCP_SESSIONS) return { ok: true };
  // The session to close: of the caller holding the most (ties: the longest unused), who keeps more than the newcomer gets.
  let reclaim: S | undefined;
  let most = 0;
  for (const sessions of byCaller.values()) {
    if (sessions.length <= mine + 1) continue;
    const candidate = [...sessions].sort(reclaimOrder)[0] as S;
    if (sessions.length > most || (sessions.length === most && reclaim !== undefined && reclaimOrder(candidate, reclaim) < 0)) {
      reclaim = candidate;
      most = sessions.length;
    }
  }
  if (reclaim) return { ok: true, reclaim };
  return { ok: false, status: 503, message: `twokey: the agent has ${MAX_MCP_SESSIONS} MCP sessions, the most it takes, and no caller holds more than you would: try again later` };
}
