export const HTTP_FETCH_TIMEOUT_MS = 5_000;
const MAX_FETCH_BYTES = 1024 * 1024;

/**
 * The default `fetchJson` for the token verifier (discovery documents and JWKS): bounded in time and
 * size, no redirects. The verifier never calls it directly; the agent and the handlers inject it.
 */
export async function fetchJson(url: string): Promise<unknown> {
  const res = await fetch(url, { signal: AbortSignal.timeout(HTTP_FETCH_TIMEOUT_MS), redirect: 'error' });
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  const text = await res.text();
  if (text.length > MAX_FETCH_BYTES) throw new Error(`GET ${url}: body too large`);
  return JSON.parse(text);
}
