import { seed } from './seed';
import type { FixtureToken } from './access-review';
import { startServer } from './server';
import { streamUpgrades } from './streams/upgrade';
import { FixtureState } from './state';
import { servingCertificate } from './tls';

export type { FixtureToken } from './access-review';
export type { RecordedRequest } from './server';
export { FixtureState } from './state';
export { DEMO_OBJECTS, DEMO_WEB_LOG, SYSTEM_NAMESPACES } from './seed';
export { kubeconfigYaml, writeKubeconfig, type KubeconfigOptions } from './kubeconfig';

/** How often watches that allow bookmarks get one (the real server: about once a minute). */
export const DEFAULT_BOOKMARK_INTERVAL_MS = 1_000;

export interface KubeFixtureOptions {
  /** Bearer token -> who it is and what RBAC lets it do. */
  tokens: Record<string, FixtureToken>;
  /** Seed the demo application in `default` (default true); the system namespaces always exist. */
  demo?: boolean;
  bookmarkIntervalMs?: number;
  host?: string;
  port?: number;
}

export interface KubeFixture {
  /** `https://127.0.0.1:PORT`. */
  url: string;
  /** The CA that signed the serving certificate (for a kubeconfig's certificate-authority-data). */
  caPem: string;
  stop(): Promise<void>;
  state: FixtureState;
}

/** Starts a Kubernetes API server stand-in on a free port (see README "Kubernetes fixture"). */
export async function startKubeFixture(options: KubeFixtureOptions): Promise<KubeFixture> {
  const tls = servingCertificate();
  const state = new FixtureState();
  seed(state, options.demo ?? true);
  const running = await startServer({ tls, tokens: options.tokens, state, bookmarkIntervalMs: options.bookmarkIntervalMs ?? DEFAULT_BOOKMARK_INTERVAL_MS, upgrade: streamUpgrades(state) }, options.host ?? '127.0.0.1', options.port ?? 0);
  return { url: running.url, caPem: tls.caPem, stop: running.stop, state };
}
