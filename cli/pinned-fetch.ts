import { request } from 'node:https';
import { Readable } from 'node:stream';

/**
 * `fetch` over HTTPS that trusts only `caPem` (an agent's generated certificate, or the CA that
 * signed its configured one) instead of the system's roots; the host name is checked against the
 * certificate as always, and NODE_TLS_REJECT_UNAUTHORIZED=0 in the environment does not lift the pin. Bodies are the strings the MCP SDK sends; anything else is refused.
 */
export function pinnedFetch(caPem: string): typeof fetch {
  return (input, init) =>
    new Promise<Response>((resolve, reject) => {
      const url = new URL(input instanceof Request ? input.url : input);
      if (url.protocol !== 'https:') return reject(new TypeError(`twokey: a pinned CA is for https:// URLs, not ${url.protocol}`));
      if (init?.body !== undefined && init.body !== null && typeof init.body !== 'string') return reject(new TypeError('twokey: only text bodies are sent'));
      const req = request(url, { method: init?.method ?? 'GET', headers: Object.fromEntries(new Headers(init?.headers)), ca: caPem, rejectUnauthorized: true, signal: init?.signal ?? undefined }, (res) => {
        const headers = new Headers();
        for (const [name, value] of Object.entries(res.headers)) for (const v of [value ?? []].flat()) headers.append(name, v);
        const status = res.statusCode ?? 502;
        const empty = status === 204 || status === 304 || init?.method === 'HEAD';
        if (empty) res.resume();
        resolve(new Response(empty ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), { status, statusText: res.statusMessage, headers }));
      });
      req.once('error', reject);
      req.end(init?.body ?? undefined);
    });
}
