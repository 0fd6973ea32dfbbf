import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { META_LOG_MAX_BYTES, readMeta, recoverSession, sealedChunks, SPOOL_FLUSH_MS, writeMeta } from '../../../agent/recording/spool';
import { RecordingService } from '../../../agent/recording/recording-service';
import type { TunnelClient } from '../../../agent/tunnel/tunnel-client';
import { decodeChunk, verifyChain } from '../../../core/recording/chunk';
import { appendFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';

/** A tunnel that is never connected: nothing leaves the spool, which is what these tests look at. */
const offline = { connected: false, onMessage: () => undefined, onConnected: () => undefined, send: () => ({ ok: false, error: new Error('offline') }) } as unknown as TunnelClient;
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const meta = (sessionId: string) => ({ sessionId, target: 't', protocol: 'postgres', format: 'ndjson' as const, identity: { subject: 's', name: 's', groups: [] }, startedAt: new Date().toISOString() });

describe('recording spool', () => {
  it('keeps sealed chunks, chained, until they are uploaded', () => {
    const root = mkdtempSync(join(tmpdir(), 'tk-spool-'));
    const service = new RecordingService(root, offline, quiet);
    const spool = service.begin(meta('11111111-1111-4111-8111-111111111111'));
    spool.append({ e: 'one' });
    spool.seal();
    spool.append({ e: 'two' });
    service.end('11111111-1111-4111-8111-111111111111', true);
    const dir = join(root, '11111111-1111-4111-8111-111111111111');
    const chunks = sealedChunks(dir).map((c) => readFileSync(c.file));
    const m = readMeta(dir);
    expect(chunks).toHaveLength(2);
    expect(m?.ended?.complete).toBe(true);
    expect(verifyChain(chunks, { sessionId: '11111111-1111-4111-8111-111111111111', finalDigest: m?.prev ?? '', chunkCount: 2 }).ok).toBe(true);
    expect(service.pending()).toEqual({ sessions: 1, chunks: 2 });
  });

  it('writes nothing after the session ended: no event, no further chunk', () => {
    const root = mkdtempSync(join(tmpdir(), 'tk-spool-'));
    const service = new RecordingService(root, offline, quiet);
    const sessionId = '44444444-4444-4444-8444-444444444444';
    const spool = service.begin(meta(sessionId));
    spool.append({ e: 'before' });
    service.end(sessionId, true);
    spool.append({ e: 'after' });
    spool.seal();
    const chunks = sealedChunks(join(root, sessionId)).map((c, i) => decodeChunk(readFileSync(c.file), i));
    expect(chunks).toHaveLength(1);
    const body = chunks[0]?.ok ? chunks[0].value.body.toString() : '';
    expect(body).toContain('"before"');
    expect(body).not.toContain('"after"');
  });

  it('at its disk cap, says so once, drops further chunks and marks the session incomplete', () => {
    const root = mkdtempSync(join(tmpdir(), 'tk-spool-'));
    const service = new RecordingService(root, offline, quiet, 10);
    let fullCalls = 0;
    service.onFull(() => fullCalls++);
    const spool = service.begin(meta('22222222-2222-4222-8222-222222222222'));
    spool.append({ e: 'fits before the cap is known' });
    spool.seal();
    expect(service.full()).toBe(true);
    spool.append({ e: 'dropped' });
    spool.seal();
    service.end('22222222-2222-4222-8222-222222222222', true);
    const dir = join(root, '22222222-2222-4222-8222-222222222222');
    expect(fullCalls).toBe(1);
    expect(sealedChunks(dir)).toHaveLength(1);
    expect(readMeta(dir)).toMatchObject({ lost: true, ended: { complete: false } });
    expect(readdirSync(root)).toHaveLength(1);
  });

  it('after a crash, seals what reached the open chunk file as the last chunk and marks the session incomplete', async () => {
    const root = mkdtempSync(join(tmpdir(), 'tk-spool-'));
    const service = new RecordingService(root, offline, quiet);
    const spool = service.begin(meta('77777777-7777-4777-8777-777777777777'));
    spool.append({ e: 'flushed' });
    await new Promise((r) => setTimeout(r, SPOOL_FLUSH_MS * 2));
    spool.append({ e: 'still in memory when the process died' });
    service.stop();
    const dir = join(root, '77777777-7777-4777-8777-777777777777');
    expect(recoverSession(dir)?.ended?.complete).toBe(false);
    const [chunk] = sealedChunks(dir);
    const decoded = decodeChunk(readFileSync(chunk?.file ?? ''), 0);
    expect(decoded.ok && decoded.value.body.toString('utf8')).toBe('{"e":"flushed"}\n');
  });

  it('after a crash that tore the last write, keeps the whole members and marks the recording lost', async () => {
    const root = mkdtempSync(join(tmpdir(), 'tk-spool-'));
    const service = new RecordingService(root, offline, quiet);
    const sessionId = '88888888-8888-4888-8888-888888888888';
    const spool = service.begin(meta(sessionId));
    spool.append({ e: 'first flush' });
    await new Promise((r) => setTimeout(r, SPOOL_FLUSH_MS * 2));
    spool.append({ e: 'second flush' });
    await new Promise((r) => setTimeout(r, SPOOL_FLUSH_MS * 2));
    service.stop();
    const dir = join(root, sessionId);
    const open = join(dir, 'open.gz');
    const stored = readFileSync(open);
    // The last member cut in half, as a power loss in mid-write would leave it.
    const secondMember = stored.lastIndexOf(Buffer.from([0x1f, 0x8b, 0x08]));
    writeFileSync(open, stored.subarray(0, secondMember + 12));
    const recovered = recoverSession(dir);
    expect(recovered).toMatchObject({ lost: true, nextSeq: 1, ended: { complete: false } });
    const chunks = sealedChunks(dir).map((c) => readFileSync(c.file));
    const decoded = decodeChunk(chunks[0] as Buffer, 0);
    expect(decoded.ok && decoded.value.body.toString('utf8')).toBe('{"e":"first flush"}\n');
    expect(verifyChain(chunks, { sessionId, finalDigest: recovered?.prev ?? '', chunkCount: 1 }).ok).toBe(true);
  });

  it('after a crash between a seal and its meta update, chains the sealed chunk in', () => {
    const root = mkdtempSync(join(tmpdir(), 'tk-spool-'));
    const service = new RecordingService(root, offline, quiet);
    const sessionId = '99999999-9999-4999-8999-999999999999';
    const spool = service.begin(meta(sessionId));
    const dir = join(root, sessionId);
    const before = readFileSync(join(dir, 'meta.log'));
    spool.append({ e: 'sealed' });
    spool.seal();
    // The meta as it was before the seal: the process died right after the rename.
    writeFileSync(join(dir, 'meta.log'), before);
    spool.abandon();
    const recovered = recoverSession(dir);
    const chunks = sealedChunks(dir).map((c) => readFileSync(c.file));
    expect(recovered).toMatchObject({ nextSeq: 1, ended: { complete: false } });
    expect(verifyChain(chunks, { sessionId, finalDigest: recovered?.prev ?? '', chunkCount: 1 }).ok).toBe(true);
  });

  it('reads the meta from its last whole line, and keeps the log short', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tk-meta-'));
    const first = { ...meta('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'), nextSeq: 0, prev: '0'.repeat(64), startSent: false };
    writeMeta(dir, first);
    writeMeta(dir, { ...first, nextSeq: 1 });
    expect(readMeta(dir)?.nextSeq).toBe(1);
    // A crash in mid-append leaves half a line: the one before it counts.
    appendFileSync(join(dir, 'meta.log'), '{"sessionId":"aaaa');
    expect(readMeta(dir)?.nextSeq).toBe(1);
    let seq = 2;
    let largest = 0;
    for (; seq < 10_000; seq++) {
      writeMeta(dir, { ...first, nextSeq: seq });
      const size = statSync(join(dir, 'meta.log')).size;
      if (size < largest) break;
      largest = size;
    }
    // Rewritten once it grew past the bound: one line, the latest.
    expect(largest).toBeLessThanOrEqual(META_LOG_MAX_BYTES);
    expect(largest).toBeGreaterThan(META_LOG_MAX_BYTES / 2);
    expect(readFileSync(join(dir, 'meta.log'), 'utf8').split('\n').filter(Boolean)).toHaveLength(1);
    expect(readMeta(dir)?.nextSeq).toBe(seq);
  });
});
