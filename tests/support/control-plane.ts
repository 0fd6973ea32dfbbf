import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { startLocalControlPlane, type ControlPlaneOptions, type LocalControlPlane } from '../../local/control-plane';
import { mintDevToken, type TokenRequest } from '../../local/oidc/dev-issuer';

/** The local control plane on free ports, in memory (or on disk in `dataDir`). */
export async function startTestControlPlane(
  dataDir?: string,
  httpPort = 0,
  policyStream = true,
  extra: Pick<ControlPlaneOptions, 'slack' | 'samlIdp' | 'reviewerOidc' | 'kmsTokenKey'> = {},
): Promise<LocalControlPlane> {
  return startLocalControlPlane({
    ...extra,
    dataDir,
    policyStream,
    s3Dir: dataDir ? join(dataDir, 's3') : mkdtempSync(join(tmpdir(), 'tk-s3-')),
    outboxDir: dataDir ? join(dataDir, 'outbox') : mkdtempSync(join(tmpdir(), 'tk-outbox-')),
    host: '127.0.0.1',
    ports: { http: httpPort, dynamo: 0, s3: 0 },
    log: () => undefined,
  });
}

/** A dev token for the control plane's API, or with `audience: 'data'` for an agent (a psql password). */
export function tokenFor(cp: LocalControlPlane, user: string, groups: string[], options: Partial<TokenRequest> = {}): Promise<string> {
  return mintDevToken(cp.issuer, cp.signingKey, { user, groups, audience: 'api', ...options });
}

export async function api(cp: LocalControlPlane, token: string | undefined, method: string, path: string, body?: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${cp.httpUrl}${path}`, {
    method,
    body,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {}, headers: res.headers };
}

export const TEST_POLICY = `
targets:
  - { name: orders-db, protocol: postgres, agent: edge-1 }
  - { name: other-db, protocol: postgres, agent: edge-2 }
reviewers: { dba: [{ subject: bob, email: bob@example.com, issuer: 'https://issuer.test' }] }
rules:
  - name: support
    targets: [orders-db]
    subjects: { groups: [support] }
    actions: { read: allow, write: { approve: { groups: [dba] } } }
`;

export async function waitFor<T>(probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** An agent's tunnel connection with `key`, open. */
export async function openTunnel(cp: LocalControlPlane, key: string): Promise<WebSocket> {
  const ws = new WebSocket(cp.wsUrl, { headers: { authorization: `Bearer ${key}` } });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return ws;
}
