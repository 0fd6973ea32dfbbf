import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readMeta } from '../../../agent/recording/spool';
import { RecordingService } from '../../../agent/recording/recording-service';
import type { TunnelClient } from '../../../agent/tunnel/tunnel-client';
import { MAX_PRESIGN_BATCH, TUNNEL_PROTOCOL_VERSION, type AgentMessage, type ControlMessage } from '../../../core/tunnel/messages';

const SESSION = '33333333-3333-4333-8333-333333333333';
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const meta = { sessionId: SESSION, target: 't', protocol: 'postgres', format: 'ndjson' as const, identity: { subject: 's', name: 's', groups: [] }, startedAt: new Date().toISOString() };

/**
 * A control plane that answers presign requests with URLs of a local HTTP server (which stands in for
 * S3 and refuses the next `refuse` uploads with 403): what is counted is the agent's requests.
 */
function controlPlane(base: () => string, expiresInMs: number, forgetSessions = 0) {
  let forget = forgetSessions;
  const asked: Extract<AgentMessage, { type: 'recording.presign' }>[] = [];
  const started: string[] = [];
  let handler: (m: ControlMessage) => void = () => undefined;
  const tunnel = {
    connected: true,
    onMessage: (h: (m: ControlMessage) => void) => (handler = h),
    onConnected: () => undefined,
    send: (m: AgentMessage) => {
      if (m.type === 'session.start') started.push(m.sessionId);
      if (m.type === 'recording.presign') {
        asked.push(m);
        if (forget > 0) {
          forget--;
          setImmediate(() => handler({ type: 'error', v: TUNNEL_PROTOCOL_VERSION, code: 'unknown-session', message: 'no such session for this agent', inReplyTo: m.sessionId }));
          return { ok: true };
        }
        const urls = Array.from({ length: m.count ?? 1 }, (_, i) => `${base()}/${m.sessionId}/${m.seq + i}`);
        const expiresAt = new Date(Date.now() + expiresInMs).toISOString();
        setImmediate(() => handler({ type: 'recording.url', v: TUNNEL_PROTOCOL_VERSION, sessionId: m.sessionId, seq: m.seq, url: urls[0] as string, following: urls.slice(1), expiresAt }));
      }
      return { ok: true };
    },
  } as unknown as TunnelClient;
  return { tunnel, asked, started };
}

describe('chunk uploads', () => {
  let server: Server;
  let base = '';
  const stored: string[] = [];
  let refuse = 0;

  beforeAll(async () => {
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (refuse > 0) {
          refuse--;
          res.statusCode = 403;
        } else stored.push(req.url ?? '');
        res.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));
  beforeEach(() => {
    stored.length = 0;
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
    const cp = controlPlane(() => base, 300_000);
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

  it("uploads a session's chunks with URLs from one presign request per batch", async () => {
    const cp = controlPlane(() => base, 300_000);
    const service = new RecordingService(mkdtempSync(join(tmpdir(), 'tk-upload-')), cp.tunnel, quiet);
    sealChunks(service, MAX_PRESIGN_BATCH + 2);
    await drained(service, MAX_PRESIGN_BATCH + 2);
    expect(stored).toEqual(Array.from({ length: MAX_PRESIGN_BATCH + 2 }, (_, seq) => `/${SESSION}/${seq}`));
    expect(cp.asked.map((m) => [m.seq, m.count])).toEqual([
      [0, MAX_PRESIGN_BATCH],
      [MAX_PRESIGN_BATCH, MAX_PRESIGN_BATCH],
    ]);
    // Announced once, though the open spool rewrote its meta at every seal.
    expect(cp.started).toEqual([SESSION]);
    service.stop();
  });

  it('asks again when a kept URL is about to expire or an upload with one fails', async () => {
    // Valid for less than an upload may take: never kept.
    const soon = controlPlane(() => base, 1_000);
    const first = new RecordingService(mkdtempSync(join(tmpdir(), 'tk-upload-')), soon.tunnel, quiet);
    sealChunks(first, 3);
    await drained(first, 3);
    expect(soon.asked.map((m) => m.seq)).toEqual([0, 1, 2]);
    first.stop();

    stored.length = 0;
    const cp = controlPlane(() => base, 300_000);
    const second = new RecordingService(mkdtempSync(join(tmpdir(), 'tk-upload-')), cp.tunnel, quiet);
    sealChunks(second, 3);
    refuse = 2; // the first two uploads are refused: each time, the kept URLs are dropped and asked for again
    await drained(second, 3);
    expect(stored).toEqual([0, 1, 2].map((seq) => `/${SESSION}/${seq}`));
    expect(cp.asked.map((m) => m.seq)).toEqual([0, 0, 0]);
    second.stop();
  });

  it('announces an open session again when the control plane does not know it, then uploads', async () => {
    const cp = controlPlane(() => base, 300_000, 1);
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
    const cp = controlPlane(() => base, 300_000);
    const service = new RecordingService(mkdtempSync(join(tmpdir(), 'tk-upload-')), cp.tunnel, quiet);
    service.begin(meta).append({ e: 'event' });
    service.end(SESSION, true);
    await drained(service, 1);
    expect(stored).toEqual([`/${SESSION}/0`]);
    expect(cp.asked.map((m) => [m.seq, m.count])).toEqual([[0, 1]]);
    service.stop();
  });

  it('asks for only the URLs an ended session still needs', async () => {
    const cp = controlPlane(() => base, 300_000);
    (cp.tunnel as { connected: boolean }).connected = false;
    const service = new RecordingService(mkdtempSync(join(tmpdir(), 'tk-upload-')), cp.tunnel, quiet);
    sealChunks(service, 2);
    service.end(SESSION, true);
    (cp.tunnel as { connected: boolean }).connected = true;
    await drained(service, 2);
    expect(cp.asked.map((m) => [m.seq, m.count])).toEqual([[0, 2]]);
    service.stop();
  });
});
