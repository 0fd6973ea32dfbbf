import { DEFAULT_DATA_DIR, readDevInfo } from '../local/dev-config';

export const CLI_HTTP_TIMEOUT_MS = 15_000;

/** Options every command that calls the control plane takes. */
export const CONTROL_PLANE_OPTIONS = {
  url: { type: 'string' },
  token: { type: 'string' },
  'data-dir': { type: 'string', default: DEFAULT_DATA_DIR },
  json: { type: 'boolean', default: false },
} as const;

export const clientOptions = (v: { url?: string; token?: string; 'data-dir': string }): ClientOptions => ({ url: v.url, token: v.token, dataDir: v['data-dir'] });

export interface ClientOptions {
  readonly url?: string;
  readonly token?: string;
  readonly dataDir?: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Calls the control plane HTTP API: URL from --url or dev.json, token (for the API's audience) from --token or TWOKEY_TOKEN. */
export async function apiCall(options: ClientOptions, method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<{ status: number; json: unknown; headers: Headers }> {
  const base = options.url ?? (await readDevInfo(options.dataDir ?? DEFAULT_DATA_DIR)).controlPlane.httpUrl;
  const token = options.token ?? process.env.TWOKEY_TOKEN;
  if (!token) throw new ApiError(0, 'no_token', 'no token: pass --token or set TWOKEY_TOKEN (e.g. TWOKEY_TOKEN=$(twokey token --user root --audience api))');
  const res = await fetch(`${base.replace(/\/$/, '')}${path}`, {
    method,
    body,
    headers: { authorization: `Bearer ${token}`, ...headers },
    signal: AbortSignal.timeout(CLI_HTTP_TIMEOUT_MS),
  });
  const text = await res.text();
  let json: unknown = text;
  try {
    json = JSON.parse(text);
  } catch {
    // keep the text
  }
  if (!res.ok) {
    const error = (json as { error?: { code?: string; message?: string; details?: unknown } }).error;
    const details = error?.details ? `\n${JSON.stringify(error.details, null, 2)}` : '';
    const hint = res.status === 401 ? ' (the API takes a token for its own audience: twokey token --user NAME --audience api, or twokey login --resource <the API audience>)' : '';
    throw new ApiError(res.status, error?.code ?? 'http_error', `HTTP ${res.status}: ${error?.message ?? text}${hint}${details}`);
  }
  return { status: res.status, json, headers: res.headers };
}
