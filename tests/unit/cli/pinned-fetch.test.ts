import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { selfSignedCertificate } from '../../../agent/kubernetes/tls';
import { pinnedFetch } from '../../../cli/pinned-fetch';

describe('pinnedFetch', () => {
  const served = selfSignedCertificate('served', ['127.0.0.1', 'localhost']);
  let server: Server;
  let url: string;

  beforeAll(async () => {
    server = createServer(served, (_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('reaches a server presenting the pinned certificate', async () => {
    expect(await (await pinnedFetch(served.cert)(url)).text()).toBe('ok');
  });

  it('refuses an http:// URL rather than sending the request in the clear', async () => {
    await expect(pinnedFetch(served.cert)(url.replace('https:', 'http:'))).rejects.toThrow('twokey: a pinned CA is for https:// URLs, not http:');
  });
});
