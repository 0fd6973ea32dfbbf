import type { AddressInfo, Server } from 'node:net';

/** Binds a listener where its config says and resolves with what it bound (a port of 0 picks a free one); rejects on a bind error. */
export async function listenOn(server: Server, listen: { readonly host: string; readonly port: number }): Promise<AddressInfo> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server.address() as AddressInfo;
}
