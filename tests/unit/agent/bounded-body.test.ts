import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readBounded, type BoundedBody } from '../../../agent/net/bounded-body';

const LIMIT_BYTES = 1024;

describe('readBounded (the agent\'s one reader of HTTP bodies)', () => {
  let server: Server;
  let read: Promise<BoundedBody>;
  let port: number;

  beforeEach(async () => {
    let deliver: (result: BoundedBody) => void;
    read = new Promise((resolve) => (deliver = resolve));
    server = createServer((req, res) => {
      void readBounded(req, LIMIT_BYTES).then((result) => {
        deliver(result);
        res.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterEach(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  /** POSTs `chunks` one write each, chunked. */
  function post(chunks: Buffer[]): Promise<void> {
    return new Promise((resolve) => {
      const req = request({ host: '127.0.0.1', port, method: 'POST' }, (res) => res.resume().on('end', resolve));
      req.on('error', () => resolve());
      for (const c of chunks) req.write(c);
      req.end();
    });
  }

  it('returns a body at the limit whole, however it was split', async () => {
    const body = Buffer.alloc(LIMIT_BYTES, 'a');
    await post([body.subarray(0, 1), body.subarray(1, 500), body.subarray(500)]);
    expect(await read).toEqual({ ok: true, value: body });
  });

  it('refuses a declared Content-Length over the limit before reading the body', async () => {
    // Headers only: the body never comes, so only the declared length can have been refused.
    const req = request({ host: '127.0.0.1', port, method: 'POST', headers: { 'content-length': LIMIT_BYTES + 1 } }).on('error', () => undefined);
    req.flushHeaders();
    expect(await read).toEqual({ ok: false, tooLarge: true, reason: `the body is over ${LIMIT_BYTES} bytes` });
    req.destroy();
  });

  it('refuses a chunked body once it passes the limit', async () => {
    await post([Buffer.alloc(LIMIT_BYTES, 'a'), Buffer.from('b')]);
    expect(await read).toEqual({ ok: false, tooLarge: true, reason: `the body is over ${LIMIT_BYTES} bytes` });
  });
});
