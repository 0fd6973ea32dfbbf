import { startSession } from '../../lambdas/domain/sessions';
import { getRuntime } from '../../lambdas/shared/runtime';
import { RecentPolicy } from '../../lambdas/store/recent-policy';
import { TUNNEL_PROTOCOL_VERSION, type AgentMessage } from '../../core/tunnel/messages';
import type { LocalControlPlane } from '../../local/control-plane';
import { startTestControlPlane, TEST_POLICY } from '../support/control-plane';

const MAX_AGE_MS = 5_000;

describe('session starts (local stack: dynalite)', () => {
  let cp: LocalControlPlane;
  const deps = () => getRuntime('test').deps;
  let policyVersion = 0;
  const putPolicy = (source: string) => deps().policies.putVersion({ version: ++policyVersion, source, updatedAt: new Date().toISOString(), updatedBy: 'root' });
  let sessions = 0;
  /** A session.start from `agent` for `target`, checked against the policy as `recent` last read it. */
  const startMessage = (sessionId: string, target: string): Extract<AgentMessage, { type: 'session.start' }> => ({
    type: 'session.start',
    v: TUNNEL_PROTOCOL_VERSION,
    sessionId,
    target,
    protocol: 'postgres',
    format: 'ndjson',
    identity: { subject: 'alice', issuer: 'https://idp.example.test/', name: 'Alice', groups: ['support'] },
    startedAt: '2026-11-30T10:00:00.000Z',
  });
  const start = (recent: RecentPolicy, agent: string, target: string) => {
    const sessionId = `11111111-2222-4333-8444-${String(++sessions).padStart(12, '0')}`;
    return startSession({ ...deps(), recentPolicy: recent }, agent, startMessage(sessionId, target)).then(async (replies) => ({ sessionId, replies, stored: await deps().sessions.get(sessionId) }));
  };

  beforeAll(async () => {
    cp = await startTestControlPlane(undefined, 0, false);
    await putPolicy(TEST_POLICY);
  });
  afterAll(() => cp.stop());

  it('records a session of a target the agent serves, and refuses one of a target it does not', async () => {
    const recent = new RecentPolicy(deps().policies, Date.now, MAX_AGE_MS);
    const served = await start(recent, 'edge-1', 'orders-db');
    expect(served.replies).toEqual([{ type: 'session.started', v: TUNNEL_PROTOCOL_VERSION, sessionId: served.sessionId }]);
    expect(served.stored).toMatchObject({ agent: 'edge-1', target: 'orders-db', status: 'live', identity: { subject: 'alice', issuer: 'https://idp.example.test/' } });
    const other = await start(recent, 'edge-1', 'other-db');
    expect(other.replies).toEqual([expect.objectContaining({ type: 'error', code: 'target-not-served', inReplyTo: other.sessionId })]);
    expect(other.stored).toBeUndefined();
  });

  it('confirms a repeated start to the agent that started the session, and to no other', async () => {
    const recent = new RecentPolicy(deps().policies, Date.now, MAX_AGE_MS);
    const first = await start(recent, 'edge-1', 'orders-db');
    const again = await startSession({ ...deps(), recentPolicy: recent }, 'edge-1', startMessage(first.sessionId, 'orders-db'));
    expect(again).toEqual([expect.objectContaining({ type: 'session.started', sessionId: first.sessionId })]);
    const other = await startSession({ ...deps(), recentPolicy: recent }, 'edge-2', startMessage(first.sessionId, 'other-db'));
    expect(other).toEqual([expect.objectContaining({ type: 'error', code: 'unknown-session' })]);
    expect(await deps().sessions.get(first.sessionId)).toMatchObject({ agent: 'edge-1', target: 'orders-db' });
  });

  it('checks a target moved to another agent by the policy read last, and by the new one once that is older than its age', async () => {
    let now = Date.now();
    const recent = new RecentPolicy(deps().policies, () => now, MAX_AGE_MS);
    expect((await start(recent, 'edge-1', 'orders-db')).replies).toEqual([expect.objectContaining({ type: 'session.started' })]);
    await putPolicy(TEST_POLICY.replace('{ name: orders-db, protocol: postgres, agent: edge-1 }', '{ name: orders-db, protocol: postgres, agent: edge-2 }'));
    // Within the age, edge-1 may still be serving orders-db by the policy pushed to it: its session is recorded.
    now += MAX_AGE_MS - 1;
    expect((await start(recent, 'edge-1', 'orders-db')).replies).toEqual([expect.objectContaining({ type: 'session.started' })]);
    now += 1;
    const moved = await start(recent, 'edge-1', 'orders-db');
    expect(moved.replies).toEqual([expect.objectContaining({ code: 'target-not-served' })]);
    expect(moved.stored).toBeUndefined();
    expect((await start(recent, 'edge-2', 'orders-db')).replies).toEqual([expect.objectContaining({ type: 'session.started' })]);
  });
});
