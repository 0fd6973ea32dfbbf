import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { readMeta } from '../../../agent/recording/spool';
import { decodeChunk } from '../../../core/recording/chunk';
import { RecordingService } from '../../../agent/recording/recording-service';
import type { TunnelClient } from '../../../agent/tunnel/tunnel-client';
import { MAX_PRESIGN_BATCH, TUNNEL_PROTOCOL_VERSION, type AgentMessage, type ControlMessage } from '../../../core/tunnel/messages';

const SESSION = '33333333-3333-4333-8333-333333333333';
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const meta = { sessionId: SESSION, target: 't', protocol: 'postgres', format: 'ndjson' as const, identity: { subject: 's', name: 's', groups: [] }, startedAt: new Date().toISOString() };

/**
 * A control plane that confirms session starts (after `startDelayMs`) and answers presign requests
 * with URLs of a local HTTP server (which stands in for S3 and refuses the next `refuse` uploads with
 * 403): what is counted is the agent's requests.
 */
function controlPlane(base: () => string, forgetSessions = 0, startDelayMs = 0) {
  let forget = forgetSessions;
  const asked: Extract<AgentMessage, { type: 'recording.presign' }>[] = [];
  const started: string[] = [];
  const ended: string[] = [];
  const confirmed: string[] = [];
  let handler: (m: ControlMessage) => void = () => undefined;
  const tunnel = {
    connected: true,
    onMessage: (h: (m: ControlMessage) => void) => (handler = h),
    onConnected: () => undefined,
    send: (m: AgentMessage) => {
      if (m.type === 'session.start') {
        started.push(m.sessionId);
        setTimeout(() => {
          confirmed.push(m.sessionId);
          handler({ type: 'session.started', v: TUNNEL_PROTOCOL_VERSION, sessionId: m.sessionId });
        }, startDelayMs);
      }
      if (m.type === 'session.end') {
        ended.push(m.sessionId);
        setImmediate(() => handler({ type: 'session.ended', v: TUNNEL_PROTOCOL_VERSION, sessionId: m.sessionId, status: 'complete' }));
      }
      if (m.type === 'recording.presign') {
        asked.push(m);
        if (!confirmed.includes(m.sessionId) || forget > 0) {
          forget = Math.max(0, forget - 1);
          setImmediate(() => handler({ type: 'error', v: TUNNEL_PROTOCOL_VERSION, code: 'unknown-session', message: 'no such session for this agent', inReplyTo: m.sessionId }));
          return { ok: true };
        }
        const urls = m.chunks.map((_, i) => `${base()}/${m.sessionId}/${m.seq + i}`);
        const expiresAt = new Date(Date.now() + 300_000).toISOString();
        setImmediate(() => handler({ type: 'recording.url', v: TUNNEL_PROTOCOL_VERSION, sessionId: m.sessionId, seq: m.seq, url: urls[0] as string, following: urls.slice(1), expiresAt }));
      }
      return { ok: true };
    },
  } as unknown as TunnelClient;
  return { tunnel, asked, started, ended };
}

describe('chunk uploads', () => {
  let server: Server;
  let base = '';
  const stored: string[] = [];
  const bodies: Buffer[] = [];
  let refuse = 0;

  beforeAll(async () => {
    // As S3 with Object Lock: a PUT must carry the SHA-256 of its body.
    server = createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (p: Buffer) => parts.push(p));
      req.on('end', () => {
        const body = Buffer.concat(parts);
        if (refuse > 0) {
          refuse--;
          res.statusCode = 403;
        } else if (req.headers['x-amz-checksum-sha256'] !== createHash('sha256').update(body).digest('base64')) res.statusCode = 400;
        else {
          stored.push(req.url ?? '');
          bodies.push(body);
        }
        res.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));
  beforeEach(() => {
    stored.length = 0;
    bodies.length = 0;
    refuse = 0;
  });

  const sealChunks = (service: RecordingService, count: number) => {
    const spool = service.begin(meta);
    for (let i = 0; i < count; i++) {
      spool.append({ e: 'event', i });
      spool.seal();
    }
    return spool;
  };

  const drained = async (service: RecordingService, chunks: number) => {
    for (let i = 0; i < 200 && stored.length < chunks; i++) {
      service.drain();
      await new Promise((r) => setTimeout(r, 10));
    }
  };

  it('marks a session that lost events incomplete and tells its listeners once, after the event that found it', async () => {
    const cp = controlPlane(() => base);
    const root = mkdtempSync(join(tmpdir(), 'tk-upload-'));
    const service = new RecordingService(root, { ...cp.tunnel, connected: false } as TunnelClient, quiet);
    const told: string[] = [];
    service.onLost((id) => told.push(id));
    service.begin(meta);
    service.markLost(SESSION);
    service.markLost(SESSION);
    service.markLost('44444444-4444-4444-8444-444444444444');
    expect(told).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(told).toEqual([SESSION]);
    expect(readMeta(join(root, SESSION))?.lost).toBe(true);
    service.end(SESSION, true);
    expect(readMeta(join(root, SESSION))?.ended?.complete).toBe(false);
    service.stop();
  });

  it("uploads a session's sealed chunks with URLs from one presign request per batch", async () => {
    const cp = controlPlane(() => base);
    const service = new RecordingService(mkdtempSync(join(tmpdir(), 'tk-upload-')), cp.tunnel, quiet);
    sealChunks(service, MAX_PRESIGN_BATCH + 2);
    await drained(service, MAX_PRESIGN_BATCH + 2);
    expect(stored).toEqual(Array.from({ length: MAX_PRESIGN_BATCH + 2 }, (_, seq) => `/${SESSION}/${seq}`));
    expect(cp.asked.map((m) => [m.seq, m.chunks.length])).toEqual([
      [0, MAX_PRESIGN_BATCH],
      [MAX_PRESIGN_BATCH, 2],
    ]);
    // Announced once, though the open spool rewrote its meta at every seal.
    expect(cp.started).toEqual([SESSION]);
    service.stop();
  });

  it('asks for new URLs when an upload fails', async () => {
    const cp = controlPlane(() => base);
    const service = new RecordingService(mkdtempSync(join(tmpdir(), 'tk-upload-')), cp.tunnel, quiet);
    sealChunks(service, 3);
    refuse = 2; // the first two uploads are refused: each time, the next drain asks for URLs again
    await drained(service, 3);
    expect(stored).toEqual([0, 1, 2].map((seq) => `/${SESSION}/${seq}`));
    expect(cp.asked.map((m) => m.seq)).toEqual([0, 0, 0]);
    service.stop();
  });

  it('sends each chunk with the SHA-256 of its bytes, the digest the next chunk names as its previous', async () => {
    const cp = controlPlane(() => base);
    const service = new RecordingService(mkdtempSync(join(tmpdir(), 'tk-upload-')), cp.tunnel, quiet);
    sealChunks(service, 3);
    await drained(service, 3);
    const declared = cp.asked.flatMap((m) => m.chunks.map((c) => c.sha256));
    expect(declared).toEqual(bodies.map((b) => createHash('sha256').update(b).digest('hex')));
    expect(cp.asked.flatMap((m) => m.chunks.map((c) => c.bytes))).toEqual(bodies.map((b) => b.length));
    const prevs = bodies.map((b, i) => {
      const decoded = decodeChunk(b, i);
      if (!decoded.ok) throw new Error(decoded.error.reason);
      return decoded.value.header.prev;
    });
    expect(prevs.slice(1)).toEqual(declared.slice(0, 2));
    service.stop();
  });

  it('asks for no URL before the control plane has confirmed the session start', async () => {
    const cp = controlPlane(() => base, 0, 300);
    const service = new RecordingService(mkdtempSync(join(tmpdir(), 'tk-upload-')), cp.tunnel, quiet);
    sealChunks(service, 1);
    await drained(service, 1);
    expect(stored).toEqual([`/${SESSION}/0`]);
    expect(cp.asked.map((m) => m.seq)).toEqual([0]);
    service.stop();
  });

  it('keeps the end of a session that ended while its start was being confirmed, and ends it', async () => {
    const cp = controlPlane(() => base, 0, 300);
    const root = mkdtempSync(join(tmpdir(), 'tk-upload-'));
    const service = new RecordingService(root, cp.tunnel, quiet);
    sealChunks(service, 1);
    for (let i = 0; i < 100 && cp.started.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    service.end(SESSION, true);
    for (let i = 0; i < 200 && cp.ended.length === 0; i++) {
      service.drain();
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(stored).toEqual([`/${SESSION}/0`]);
    expect(cp.ended).toEqual([SESSION]);
    service.stop();
  });

  it('announces an open session again when the control plane does not know it, then uploads', async () => {
    const cp = controlPlane(() => base, 1);
    const service = new RecordingService(mkdtempSync(join(tmpdir(), 'tk-upload-')), cp.tunnel, quiet);
    const spool = sealChunks(service, 1);
    for (let i = 0; i < 200 && cp.asked.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 50));
    // A seal after the refusal rewrites the meta from the spool's copy: it must still say "not announced".
    spool.append({ e: 'event' });
    spool.seal();
    await drained(service, 2);
    expect(cp.started).toEqual([SESSION, SESSION]);
    expect(stored).toEqual([0, 1].map((seq) => `/${SESSION}/${seq}`));
    service.stop();
  });

  it('asks for one URL for the chunk a connected session seals as it ends', async () => {
    const cp = controlPlane(() => base);
    const service = new RecordingService(mkdtempSync(join(tmpdir(), 'tk-upload-')), cp.tunnel, quiet);
    service.begin(meta).append({ e: 'event' });
    service.end(SESSION, true);
    await drained(service, 1);
    expect(stored).toEqual([`/${SESSION}/0`]);
    expect(cp.asked.map((m) => [m.seq, m.chunks.length])).toEqual([[0, 1]]);
    service.stop();
  });

  it('asks for only the URLs an ended session still needs', async () => {
    const cp = controlPlane(() => base);
    (cp.tunnel as { connected: boolean }).connected = false;
    const service = new RecordingService(mkdtempSync(join(tmpdir(), 'tk-upload-')), cp.tunnel, quiet);
    sealChunks(service, 2);
    service.end(SESSION, true);
    (cp.tunnel as { connected: boolean }).connected = true;
    await drained(service, 2);
    expect(cp.asked.map((m) => [m.seq, m.chunks.length])).toEqual([[0, 2]]);
    service.stop();
  });
});
