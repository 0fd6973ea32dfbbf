import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { Agent, request, type RequestOptions } from 'node:https';
import type { ClientRequest, IncomingHttpHeaders } from 'node:http';
import type { KubernetesTargetConfig } from '../config';

/** A projected service-account token is rotated in its file: it is read again after this long. */
export const TOKEN_REREAD_MS = 60_000;
/** Idle keep-alive connections to the API server the agent keeps per target. */
export const MAX_IDLE_UPSTREAM_SOCKETS = 32;

type TokenSource = KubernetesTargetConfig['readToken'];
export type Credential = 'read' | 'write';

/** Reads a service-account token from its file (cached for TOKEN_REREAD_MS) or its environment variable. */
class ServiceAccountToken {
  private cached: { value: string; at: number } | undefined;

  constructor(
    private readonly source: TokenSource,
    private readonly label: string,
  ) {}

  async value(): Promise<string> {
    if (this.source.tokenEnv !== undefined) {
      const v = process.env[this.source.tokenEnv]?.trim();
      if (!v) throw new UpstreamCredentialError(`the ${this.label} token's variable ${this.source.tokenEnv} is empty`);
      return v;
    }
    if (this.cached && Date.now() - this.cached.at < TOKEN_REREAD_MS) return this.cached.value;
    const v = (await readFile(this.source.tokenFile ?? '', 'utf8').catch(() => '')).trim();
    if (!v) throw new UpstreamCredentialError(`the ${this.label} token file cannot be read`);
    this.cached = { value: v, at: Date.now() };
    return v;
  }
}

export class UpstreamCredentialError extends Error {
  override name = 'UpstreamCredentialError';
}

/** What the agent sends upstream for one request: built by the agent, never the caller's headers as they came. */
export interface UpstreamRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly credential: Credential;
}

/**
 * The target's API server: one keep-alive HTTPS agent pinned to its CA, and the two service-account
 * tokens. Only this file knows which token a request carries.
 */
export class KubeUpstream {
  private readonly agent: Agent;
  private readonly url: URL;
  private readonly tokens: Record<Credential, ServiceAccountToken>;

  constructor(target: KubernetesTargetConfig, ca: string | undefined) {
    this.url = new URL(target.apiServer);
    // Verified whatever NODE_TLS_REJECT_UNAUTHORIZED says: the tokens go to the pinned API server only.
    this.agent = new Agent({ keepAlive: true, maxFreeSockets: MAX_IDLE_UPSTREAM_SOCKETS, ca, servername: this.servername, rejectUnauthorized: true });
    this.tokens = { read: new ServiceAccountToken(target.readToken, 'read'), write: new ServiceAccountToken(target.writeToken, 'write') };
  }

  /** The request's options with the credential's bearer token; rejects when the token cannot be read. */
  async options(r: UpstreamRequest): Promise<RequestOptions> {
    const token = await this.tokens[r.credential].value();
    const base = this.url.pathname.replace(/\/$/, '');
    return {
      protocol: 'https:',
      hostname: this.url.hostname,
      port: this.url.port || 443,
      method: r.method,
      path: `${base}${r.path}`,
      headers: { ...r.headers, host: this.url.host, authorization: `Bearer ${token}` },
      agent: this.agent,
    };
  }

  /** An HTTP request upstream (the caller writes its body and ends it). */
  async request(r: UpstreamRequest): Promise<ClientRequest> {
    return request(await this.options(r));
  }

  /** An upgrade (exec, attach, port-forward) needs a connection of its own, not one from the pool. */
  async upgradeOptions(r: UpstreamRequest): Promise<RequestOptions> {
    const options = await this.options(r);
    return { ...options, agent: false, ca: this.agent.options.ca, servername: this.servername, rejectUnauthorized: true };
  }

  /** SNI names a host, never an address (RFC 6066). */
  private get servername(): string | undefined {
    const host = this.url.hostname.replace(/^\[|\]$/g, '');
    return isIP(host) ? undefined : host;
  }

  close(): void {
    this.agent.destroy();
  }
}
