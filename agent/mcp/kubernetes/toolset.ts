import { request as httpsRequest } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { z } from 'zod';
import { principalKey, type Identity } from '../../../core/identity/identity';
import type { Action, Decision } from '../../../core/policy/decide';
import type { TargetConfig } from '../../config';
import type { InProcessChannels } from '../../sessions/channels';
import { MAX_PENDING_EXECUTIONS_PER_CALLER } from '../held-executions';
import { notServed, refusal, tool, type McpTool, type McpToolset, type ToolCall, type ToolOutcome } from '../tool-registry';

/** Bytes of a response body one call keeps (an MCP result is one JSON message); more is refused as truncated. */
export const MAX_KUBE_RESPONSE_BYTES = 4 * 1024 * 1024;
/** Largest object body a call sends (the listener's own review limit is what holds a write). */
export const MAX_KUBE_BODY_BYTES = 128 * 1024;
/** The longest a call waits for the listener's answer (a held write waits on after it): below MCP clients' usual 60 s. */
export const MAX_KUBE_WAIT_SECONDS = 50;
/**
 * The shortest wait for a write's answer: the listener says nothing while it holds a write, so only its
 * silence tells a held write from one refused at once, and a refusal must have time to arrive.
 */
export const MIN_KUBE_WAIT_SECONDS = 2;
/** Time for a read's answer. */
export const KUBE_READ_TIMEOUT_MS = 50_000;

const VERBS = ['get', 'list', 'create', 'apply', 'patch', 'delete', 'scale'] as const;
type Verb = (typeof VERBS)[number];
const READ_VERBS: readonly Verb[] = ['get', 'list'];

/** DNS-1123 subdomain (names, namespaces), as the API server requires. */
const dnsName = z.string().max(253).regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'a DNS-1123 name');

export interface KubeToolDeps {
  decide(identity: Identity, target: string, action: Action): Decision;
  /** The agent's own Kubernetes listener for a target; undefined when it is not listening. */
  addressOf(target: string): { host: string; port: number } | undefined;
  readonly channels: InProcessChannels;
}

const args = z.strictObject({
  verb: z.enum(VERBS).describe('get (one object), list, create, apply (server-side), patch (JSON merge patch), delete, scale'),
  group: z.string().max(253).regex(/^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)?$/).default('').describe('API group; empty for the core group'),
  version: z.string().max(20).regex(/^v[0-9]+([a-z]+[0-9]+)?$/).default('v1'),
  resource: z.string().max(63).regex(/^[a-z0-9]+$/).describe('Plural resource name, e.g. pods, secrets, deployments'),
  namespace: dnsName.optional(),
  name: dnsName.optional(),
  body: z.record(z.string(), z.unknown()).optional().describe('The object (create, apply), the merge patch (patch)'),
  replicas: z.number().int().min(0).max(10_000).optional().describe('For scale'),
  label_selector: z.string().max(1024).optional(),
  reason: z.string().min(1).max(1024).optional().describe('Shown to reviewers of a write'),
  wait_seconds: z.number().int().min(MIN_KUBE_WAIT_SECONDS).max(MAX_KUBE_WAIT_SECONDS).optional().describe(`How long to wait for a held write's decision (default ${MAX_KUBE_WAIT_SECONDS})`),
});
type Args = z.infer<typeof args>;


/** The HTTP request a structured call stands for, or why it is malformed. */
export function kubeRequest(a: Args): { method: string; path: string; contentType?: string; body?: string } | string {
  const needsName = a.verb !== 'list' && a.verb !== 'create';
  if (needsName && !a.name) return `${a.verb} needs a name`;
  if (!needsName && a.name) return `${a.verb} takes no name`;
  if ((a.verb === 'create' || a.verb === 'apply' || a.verb === 'patch') !== (a.body !== undefined)) return a.body === undefined ? `${a.verb} needs a body` : `${a.verb} takes no body`;
  if ((a.verb === 'scale') !== (a.replicas !== undefined)) return a.verb === 'scale' ? 'scale needs replicas' : 'only scale takes replicas';
  if (a.label_selector !== undefined && a.verb !== 'list') return 'only list takes a label_selector';
  const base = a.group === '' ? `/api/${a.version}` : `/apis/${a.group}/${a.version}`;
  const collection = `${base}${a.namespace ? `/namespaces/${a.namespace}` : ''}/${a.resource}`;
  const one = `${collection}/${a.name ?? ''}`;
  switch (a.verb) {
    case 'get':
      return { method: 'GET', path: one };
    case 'list':
      return { method: 'GET', path: a.label_selector ? `${collection}?labelSelector=${encodeURIComponent(a.label_selector)}` : collection };
    case 'create':
      return { method: 'POST', path: collection, contentType: 'application/json', body: JSON.stringify(a.body) };
    case 'apply':
      return { method: 'PATCH', path: `${one}?fieldManager=twokey-mcp`, contentType: 'application/apply-patch+yaml', body: JSON.stringify(a.body) };
    case 'patch':
      return { method: 'PATCH', path: one, contentType: 'application/merge-patch+json', body: JSON.stringify(a.body) };
    case 'delete':
      return { method: 'DELETE', path: one };
    case 'scale':
      return { method: 'PATCH', path: `${one}/scale`, contentType: 'application/merge-patch+json', body: JSON.stringify({ spec: { replicas: a.replicas } }) };
  }
}

type Answer = { kind: 'answer'; status: number; json: unknown } | { kind: 'too-large' } | { kind: 'failed' };

/**
 * One request to the agent's own Kubernetes listener as the caller (their token as the bearer token),
 * the socket registered as MCP's before the request is written, so the listener judges, masks, holds
 * and records it as it does kubectl's. Resolves when the listener answers.
 */
function send(address: { host: string; port: number }, call: ToolCall, req: { method: string; path: string; contentType?: string; body?: string }, reason: string | undefined, channels: InProcessChannels): Promise<Answer> {
  return new Promise<Answer>((resolve) => {
    const body = req.body === undefined ? undefined : Buffer.from(req.body);
    const r = httpsRequest({
      host: address.host,
      port: address.port,
      method: req.method,
      path: req.path,
      agent: false,
      // The listener is this process, reached over the socket just opened: its certificate proves nothing more.
      rejectUnauthorized: false,
      headers: {
        authorization: `Bearer ${call.token}`,
        accept: 'application/json',
        'user-agent': `twokey-mcp (${call.client})`,
        ...(body ? { 'content-type': req.contentType ?? 'application/json', 'content-length': String(body.length) } : {}),
        ...(reason ? { 'x-twokey-reason': reason } : {}),
      },
    });
    r.once('socket', (socket: TLSSocket) => {
      socket.once('secureConnect', () => {
        const release = channels.register(socket.localAddress ?? '', socket.localPort ?? 0, { via: 'mcp', client: call.client });
        socket.once('close', release);
      });
    });
    r.once('error', () => resolve({ kind: 'failed' }));
    r.once('response', (res) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        if (bytes > MAX_KUBE_RESPONSE_BYTES) {
          res.destroy();
          return resolve({ kind: 'too-large' });
        }
        chunks.push(c);
      });
      res.once('error', () => resolve({ kind: 'failed' }));
      res.once('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          resolve({ kind: 'answer', status: res.statusCode ?? 0, json: JSON.parse(text) as unknown });
        } catch {
          resolve({ kind: 'answer', status: res.statusCode ?? 0, json: { text } });
        }
      });
    });
    r.end(body);
  });
}

/** The `kubectl` tool: a structured verb/resource form sent as one API request through the agent's own listener. */
export function kubernetesToolset(deps: KubeToolDeps): McpToolset {
  const available = (identity: Identity, t: TargetConfig): boolean =>
    deps.addressOf(t.name) !== undefined && (['read', 'write'] as const).some((cls) => deps.decide(identity, t.name, { class: cls, via: 'mcp' }).kind !== 'deny');

  /** Writes each caller has under way or waiting for review (each holds a connection to the listener). */
  const waiting = new Map<string, number>();
  const count = (principal: string, delta: number): void => {
    const n = (waiting.get(principal) ?? 0) + delta;
    if (n > 0) waiting.set(principal, n);
    else waiting.delete(principal);
  };

  const kubectl: McpTool<typeof args> = {
    name: 'kubectl',
    description: `One Kubernetes API request in a structured form (not a shell line): get, list, create, apply, patch, delete or scale a resource. Reads run on the read service account, masked (Secret values included); writes run at once where allowed, otherwise are held for reviewers: the call waits up to wait_seconds (default and limit ${MAX_KUBE_WAIT_SECONDS}) and then returns status pending_approval while the write waits on and runs once approved. Answers are the API server's JSON (at most 4 MiB).`,
    args,
    available,
    async call(a, call) {
      const req = kubeRequest(a);
      if (typeof req === 'string') return refusal('error', `twokey: ${req}`);
      if (req.body !== undefined && Buffer.byteLength(req.body) > MAX_KUBE_BODY_BYTES) return refusal('error', `twokey: the body is over ${MAX_KUBE_BODY_BYTES} bytes`);
      const address = deps.addressOf(call.target.name);
      if (!address) return notServed(call.target.name);
      const principal = principalKey(call.identity);
      const write = !READ_VERBS.includes(a.verb);
      if (write && (waiting.get(principal) ?? 0) >= MAX_PENDING_EXECUTIONS_PER_CALLER) {
        return refusal('deny', `twokey: you have ${MAX_PENDING_EXECUTIONS_PER_CALLER} writes awaiting review through MCP, the most one caller may`);
      }
      // Counted from the moment it is sent (checked and taken at once): concurrent calls cannot pass the cap together.
      if (write) count(principal, 1);
      const answered = send(address, call, req, a.reason, deps.channels);
      if (write) void answered.then(() => count(principal, -1), () => count(principal, -1));
      const waitMs = READ_VERBS.includes(a.verb) ? KUBE_READ_TIMEOUT_MS : (a.wait_seconds ?? MAX_KUBE_WAIT_SECONDS) * 1000;
      const late = new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), waitMs).unref());
      const answer = await Promise.race([answered, late]);
      const summary = `${req.method} ${req.path.split('?')[0] ?? ''}`;
      if (!answer) {
        if (READ_VERBS.includes(a.verb)) return refusal('error', `twokey: no answer within ${KUBE_READ_TIMEOUT_MS / 1000}s`);
        return { ok: true, decision: 'approve', result: { status: 'pending_approval', message: `twokey: no answer within ${waitMs / 1000}s: the write is held for review, and runs once approved` }, summary: `pending ${summary}` };
      }
      if (answer.kind === 'too-large') return refusal('error', `twokey: the answer is over ${MAX_KUBE_RESPONSE_BYTES} bytes; narrow it (a name, a namespace, a label_selector)`);
      if (answer.kind === 'failed') return refusal('error', 'twokey: the Kubernetes listener could not be reached');
      if (answer.status >= 400) {
        const message = (answer.json as { message?: unknown }).message;
        return refusal(answer.status === 403 ? 'deny' : 'error', typeof message === 'string' ? message : `twokey: the API answered ${answer.status}`);
      }
      return { ok: true, decision: 'allow', result: { status: answer.status, object: answer.json }, summary: `${summary} ${answer.status}` };
    },
  };

  return { protocol: 'kubernetes', tools: [tool(kubectl)] };
}
