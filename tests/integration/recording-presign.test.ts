import { chunkKey, MAX_CHUNKS_PER_SESSION, presignChunk } from '../../lambdas/domain/sessions';
import { getRuntime } from '../../lambdas/shared/runtime';
import { decodeControlMessage, MAX_FRAME_BYTES, MAX_PRESIGN_BATCH, TUNNEL_PROTOCOL_VERSION } from '../../core/tunnel/messages';
import type { LocalControlPlane } from '../../local/control-plane';
import { startTestControlPlane } from '../support/control-plane';

const SESSION = '11111111-2222-4333-8444-555555555555';
const PREFIX = `recordings/2026/11/28/${SESSION}/`;

describe('upload URLs for recording chunks (local stack: dynalite, s3rver)', () => {
  let cp: LocalControlPlane;
  const deps = () => getRuntime('test').deps;
  const presign = (agent: string, seq: number, count?: number) =>
    presignChunk(deps(), agent, { type: 'recording.presign', v: TUNNEL_PROTOCOL_VERSION, sessionId: SESSION, seq, ...(count ? { count } : {}) });

  beforeAll(async () => {
    cp = await startTestControlPlane(undefined, 0, false);
    await deps().sessions.create({
      sessionId: SESSION,
      agent: 'edge-1',
      target: 'orders-db',
      protocol: 'postgres',
      format: 'ndjson',
      user: 'alice',
      identity: { subject: 'alice', name: 'Alice', groups: ['support'] },
      startedAt: '2026-11-28T10:00:00.000Z',
      status: 'live',
      prefix: PREFIX,
    });
  });
  afterAll(() => cp.stop());

  it('gives the asked chunk and the next ones each their own URL, in one frame-sized reply', async () => {
    const [reply] = await presign('edge-1', 3, MAX_PRESIGN_BATCH);
    if (reply?.type !== 'recording.url') throw new Error(`expected recording.url, got ${JSON.stringify(reply)}`);
    expect(reply.seq).toBe(3);
    expect(reply.following).toHaveLength(MAX_PRESIGN_BATCH - 1);
    const frame = JSON.stringify(reply);
    expect(Buffer.byteLength(frame)).toBeLessThan(MAX_FRAME_BYTES);
    expect(decodeControlMessage(frame).ok).toBe(true);
    const urls = [reply.url, ...(reply.following ?? [])];
    // Each URL writes exactly its chunk's key.
    for (const [i, url] of urls.entries()) expect(new URL(url).pathname).toMatch(new RegExp(`/${chunkKey(PREFIX, 3 + i, 'ndjson').replace(/\./g, '\\.')}$`));
    const put = await fetch(urls[2] as string, { method: 'PUT', body: 'chunk five', headers: { 'content-type': 'application/gzip' } });
    expect(put.status).toBe(200);
    expect((await deps().recordings.get(chunkKey(PREFIX, 5, 'ndjson')))?.toString()).toBe('chunk five');
  });

  it('gives one URL when one is asked for, and none past the last chunk a session may have', async () => {
    const [single] = await presign('edge-1', 0);
    expect(single).toMatchObject({ type: 'recording.url', seq: 0 });
    expect(single).not.toHaveProperty('following');
    const [last] = await presign('edge-1', MAX_CHUNKS_PER_SESSION - 2, MAX_PRESIGN_BATCH);
    expect(last?.type === 'recording.url' && last.following).toHaveLength(1);
    expect(await presign('edge-1', MAX_CHUNKS_PER_SESSION, MAX_PRESIGN_BATCH)).toEqual([expect.objectContaining({ type: 'error', code: 'session-closed' })]);
  });

  it('gives another agent no URL for the session', async () => {
    expect(await presign('edge-2', 0, MAX_PRESIGN_BATCH)).toEqual([expect.objectContaining({ type: 'error', code: 'unknown-session' })]);
  });
});
