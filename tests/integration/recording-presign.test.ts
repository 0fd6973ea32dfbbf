import { createHash } from 'node:crypto';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chunkKey, endSession, MAX_CHUNKS_PER_SESSION, presignChunk, recordingDownload } from '../../lambdas/domain/sessions';
import { getRuntime } from '../../lambdas/shared/runtime';
import { GENESIS_DIGEST } from '../../core/recording/chunk';
import { decodeControlMessage, MAX_FRAME_BYTES, MAX_PRESIGN_BATCH, TUNNEL_PROTOCOL_VERSION } from '../../core/tunnel/messages';
import type { LocalControlPlane } from '../../local/control-plane';
import { startTestControlPlane } from '../support/control-plane';

const AUDITOR = { subject: 'erin', name: 'Erin', email: undefined, groups: ['auditor'], issuer: 'https://issuer.test' };
const hex = (body: Buffer): string => createHash('sha256').update(body).digest('hex');
const b64 = (body: Buffer): string => createHash('sha256').update(body).digest('base64');
const chunkBody = (seq: number): Buffer => Buffer.from(`chunk ${seq} `.repeat(seq + 1));

/** Every file under `dir` (s3rver keeps each object as a file below its key). */
const filesUnder = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? filesUnder(join(dir, d.name)) : [join(dir, d.name)]));

describe('upload URLs for recording chunks (local stack: dynalite, s3rver behind the strict S3 front)', () => {
  let cp: LocalControlPlane;
  let sessions = 0;
  const deps = () => getRuntime('test').deps;
  const presign = (agent: string, sessionId: string, seq: number, bodies: Buffer[]) =>
    presignChunk(deps(), agent, { type: 'recording.presign', v: TUNNEL_PROTOCOL_VERSION, sessionId, seq, chunks: bodies.map((b) => ({ sha256: hex(b), bytes: b.length })) });
  const urlsOf = (reply: unknown): string[] => {
    const r = reply as { type: string; url: string; following?: string[] };
    if (r.type !== 'recording.url') throw new Error(`expected recording.url, got ${JSON.stringify(reply)}`);
    return [r.url, ...(r.following ?? [])];
  };
  const upload = (url: string, body: Buffer, checksum: string | null = b64(body)) =>
    fetch(url, { method: 'PUT', body: new Uint8Array(body), headers: { 'content-type': 'application/gzip', ...(checksum ? { 'x-amz-checksum-sha256': checksum } : {}) } });
  const end = (sessionId: string, chunkCount: number, finalDigest: string) =>
    endSession(deps(), 'edge-1', { type: 'session.end', v: TUNNEL_PROTOCOL_VERSION, sessionId, endedAt: '2026-11-28T10:05:00.000Z', chunkCount, finalDigest, complete: true });
  const manifestOf = async (sessionId: string) => {
    const links = await recordingDownload(deps(), sessionId, AUDITOR);
    return (await (await fetch(links.manifestUrl)).json()) as { status: string; chunks: { seq: number; sha256: string }[] };
  };

  const newSession = async (): Promise<{ sessionId: string; prefix: string }> => {
    const sessionId = `11111111-2222-4333-8444-${String(++sessions).padStart(12, '0')}`;
    const prefix = `recordings/2026/11/28/${sessionId}/`;
    await deps().sessions.create({
      sessionId,
      agent: 'edge-1',
      target: 'orders-db',
      protocol: 'postgres',
      format: 'ndjson',
      user: 'alice',
      identity: { subject: 'alice', name: 'Alice', groups: ['support'] },
      startedAt: '2026-11-28T10:00:00.000Z',
      status: 'live',
      prefix,
    });
    return { sessionId, prefix };
  };

  beforeAll(async () => {
    cp = await startTestControlPlane(undefined, 0, false);
  });
  afterAll(() => cp.stop());

  it('gives each declared chunk its own URL, in one frame-sized reply, that stores that chunk under its key', async () => {
    const { sessionId, prefix } = await newSession();
    const bodies = Array.from({ length: MAX_PRESIGN_BATCH }, (_, i) => chunkBody(3 + i));
    const [reply] = await presign('edge-1', sessionId, 3, bodies);
    const frame = JSON.stringify(reply);
    expect(Buffer.byteLength(frame)).toBeLessThan(MAX_FRAME_BYTES);
    expect(decodeControlMessage(frame).ok).toBe(true);
    const urls = urlsOf(reply);
    expect(urls).toHaveLength(MAX_PRESIGN_BATCH);
    for (const [i, url] of urls.entries()) expect(new URL(url).pathname).toMatch(new RegExp(`/${chunkKey(prefix, 3 + i, 'ndjson').replace(/\./g, '\\.')}$`));
    expect((await upload(urls[2] as string, bodies[2] as Buffer)).status).toBe(200);
  });

  it('signs the length and SHA-256 into each URL: other bytes, more bytes or no checksum are refused', async () => {
    const { sessionId } = await newSession();
    const body = chunkBody(0);
    const [url] = urlsOf((await presign('edge-1', sessionId, 0, [body]))[0]);
    const forged = Buffer.from(body).fill(0x41);
    expect((await upload(url as string, forged, b64(body))).status).toBe(400);
    expect((await upload(url as string, Buffer.concat([body, body]), b64(body))).status).toBe(403);
    expect((await upload(url as string, body, null)).status).toBe(403);
    expect((await upload(url as string, body)).status).toBe(200);
  });

  it('keeps the first content declared for a chunk number and refuses other content for it', async () => {
    const { sessionId } = await newSession();
    expect(urlsOf((await presign('edge-1', sessionId, 0, [chunkBody(0)]))[0])).toHaveLength(1);
    expect(urlsOf((await presign('edge-1', sessionId, 0, [chunkBody(0)]))[0])).toHaveLength(1);
    expect(await presign('edge-1', sessionId, 0, [chunkBody(1)])).toEqual([expect.objectContaining({ type: 'error', code: 'chunk-conflict' })]);
  });

  it('gives no URL past the last chunk a session may have, nor to another agent', async () => {
    const { sessionId } = await newSession();
    expect(await presign('edge-1', sessionId, MAX_CHUNKS_PER_SESSION - 1, [chunkBody(0), chunkBody(1)])).toEqual([expect.objectContaining({ type: 'error', code: 'session-closed' })]);
    expect(await presign('edge-2', sessionId, 0, [chunkBody(0)])).toEqual([expect.objectContaining({ type: 'error', code: 'unknown-session' })]);
  });

  it('ends a session from the declared digests of the uploaded chunks, without reading a chunk back', async () => {
    const { sessionId } = await newSession();
    const bodies = [chunkBody(0), chunkBody(1), chunkBody(2)];
    const urls = urlsOf((await presign('edge-1', sessionId, 0, bodies))[0]);
    for (const [i, url] of urls.entries()) expect((await upload(url, bodies[i] as Buffer)).status).toBe(200);
    // Bytes changed behind S3's back (same length) are not what the manifest lists: it lists what S3 checked at upload.
    const stored = filesUnder(cp.s3.directory).find((f) => f.includes(sessionId) && f.includes('1.ndjson.gz') && !f.includes('metadata'));
    writeFileSync(stored as string, Buffer.alloc((bodies[1] as Buffer).length, 0x41));
    expect(await end(sessionId, 3, hex(bodies[2] as Buffer))).toEqual([expect.objectContaining({ type: 'session.ended', status: 'complete' })]);
    const manifest = await manifestOf(sessionId);
    expect(manifest.chunks).toEqual(bodies.map((b, seq) => expect.objectContaining({ seq, sha256: hex(b) })));
  });

  it('marks a session incomplete when a declared chunk never arrived', async () => {
    const { sessionId } = await newSession();
    const bodies = [chunkBody(0), chunkBody(1)];
    const urls = urlsOf((await presign('edge-1', sessionId, 0, bodies))[0]);
    expect((await upload(urls[1] as string, bodies[1] as Buffer)).status).toBe(200);
    expect(await end(sessionId, 2, hex(bodies[1] as Buffer))).toEqual([expect.objectContaining({ status: 'incomplete' })]);
  });

  it('answers an end repeated after the session ended with its status and rewrites nothing', async () => {
    const { sessionId } = await newSession();
    const body = chunkBody(0);
    const [url] = urlsOf((await presign('edge-1', sessionId, 0, [body]))[0]);
    expect((await upload(url as string, body)).status).toBe(200);
    expect(await end(sessionId, 1, hex(body))).toEqual([expect.objectContaining({ status: 'complete' })]);
    const before = await manifestOf(sessionId);

    expect(await end(sessionId, 0, GENESIS_DIGEST)).toEqual([expect.objectContaining({ type: 'session.ended', status: 'complete' })]);
    expect(await manifestOf(sessionId)).toEqual(before);
    expect(await deps().sessions.get(sessionId)).toMatchObject({ status: 'complete', chunkCount: 1, finalDigest: hex(body) });
    expect(await presign('edge-1', sessionId, 1, [chunkBody(1)])).toEqual([expect.objectContaining({ code: 'session-closed' })]);
  });
});
