import { request as httpsRequest } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { z } from 'zod';
import { REASON_HEADER } from '../../../core/kubernetes/request-info';
import { MAX_REASON_CHARS } from '../../../core/tunnel/messages';
import { principalKey } from '../../../core/identity/identity';
import { HOLD_GRACE_SECONDS } from '../../approvals/approval-flow';
import type { CallerChannel, InProcessChannels } from '../../sessions/channels';
import { answerWithin, HeldAction, MAX_TRACKED_RESULT_BYTES, requestStatusTool, withHeldSlot } from '../held-executions';
import { listedForAnyUse, type ToolsetDeps } from '../toolset-deps';
import { MCP_CALL_BUDGET_SECONDS, notServed, refusal, tool, type McpTool, type McpToolset, type ToolCall, type ToolOutcome } from '../tool-registry';

/** Bytes of a response body one call keeps (an MCP result is one JSON message); more is refused as truncated. */
export const MAX_KUBE_RESPONSE_BYTES = 4 * 1024 * 1024;
/** Largest object body a call sends (the listener's own review limit is what holds a write). */
export const MAX_KUBE_BODY_BYTES = 128 * 1024;
/** The longest a call waits for a held write's decision (the write waits on after it). */
export const MAX_KUBE_WAIT_SECONDS = MCP_CALL_BUDGET_SECONDS;
/** Time for the listener's answer, or for a write to be held; a held write gets its approval's timeout more. */
export const KUBE_ANSWER_TIMEOUT_MS = MCP_CALL_BUDGET_SECONDS * 1000;

const VERBS = ['get', 'list', 'create', 'apply', 'patch', 'delete', 'scale'] as const;
type Verb = (typeof VERBS)[number];
const READ_VERBS: readonly Verb[] = ['get', 'list'];

/** DNS-1123 subdomain (names, namespaces), as the API server requires. */
const dnsName = z.string().max(253).regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'a DNS-1123 name');

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
  reason: z.string().min(1).max(MAX_REASON_CHARS).optional().describe('Shown to reviewers of a write'),
  wait_seconds: z.number().int().min(0).max(MAX_KUBE_WAIT_SECONDS).optional().describe("How long to wait for a held write's decision (default 0: pending_approval at once)"),
});
type Args = z.infer<typeof args>;


/** The HTTP request a structured call stands for, or why it is malformed. */
function kubeRequest(a: Args): { method: string; path: string; contentType?: string; body?: string } | string {
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

/** A request under way to the listener: its answer, and how to withdraw it (the connection is closed). */
interface Sent {
  readonly answered: Promise<Answer>;
  abort(): void;
}

/**
 * One request to the agent's own Kubernetes listener as the caller (their token as the bearer token),
 * the socket registered as MCP's channel before the request is written, so the listener judges, masks,
 * holds and records it as it does kubectl's, and tells `channel.onHeld` when it holds it for review.
 */
function send(address: { host: string; port: number }, call: ToolCall, req: { method: string; path: string; contentType?: string; body?: string }, reason: string | undefined, channel: { registry: InProcessChannels; is: CallerChannel }): Sent {
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
      ...(reason ? { [REASON_HEADER]: reason } : {}),
    },
  });
  let settle: (a: Answer) => void = () => undefined;
  const answered = new Promise<Answer>((resolve) => {
    settle = resolve;
    r.once('socket', (socket: TLSSocket) => {
      socket.once('secureConnect', () => {
        const release = channel.registry.register(socket.localAddress ?? '', socket.localPort ?? 0, channel.is);
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
  });
  r.end(body);
  return {
    answered,
    abort() {
      settle({ kind: 'failed' });
      r.destroy();
    },
  };
}

/** What the status tool keeps of an approved write's answer: the object only when it is small (MAX_TRACKED_RESULT_BYTES). */
export function trackedAnswer(status: number, object: unknown): unknown {
  const kept = Buffer.byteLength(JSON.stringify(object) ?? '') <= MAX_TRACKED_RESULT_BYTES;
  return kept ? { http_status: status, object } : { http_status: status, truncated: true };
}

/** The `kubectl` tool: a structured verb/resource form sent as one API request through the agent's own listener. */
export function kubernetesToolset(deps: ToolsetDeps): McpToolset {
  const available = listedForAnyUse(deps);

  /** The listener's answer as a tool outcome (`held`: the request had been sent for review). */
  function outcomeOf(answer: Answer, summary: string, action: HeldAction | undefined): ToolOutcome {
    const held = action?.requestId !== undefined;
    const refused = (decision: 'deny' | 'error', message: string): ToolOutcome => {
      action?.refused(message);
      return refusal(held ? 'approve' : decision, message);
    };
    if (answer.kind === 'too-large') return refused('error', `twokey: the answer is over ${MAX_KUBE_RESPONSE_BYTES} bytes; narrow it (a name, a namespace, a label_selector)`);
    if (answer.kind === 'failed') return refused('error', 'twokey: the Kubernetes listener could not be reached, or did not answer in time');
    if (answer.status >= 400) {
      const message = (answer.json as { message?: unknown }).message;
      return refused(answer.status === 403 ? 'deny' : 'error', typeof message === 'string' ? message : `twokey: the API answered ${answer.status}`);
    }
    action?.ran(trackedAnswer(answer.status, answer.json));
    if (held) return { ok: true, decision: 'approve', result: { status: 'approved', request_id: action?.requestId, http_status: answer.status, object: answer.json }, summary: `${summary} ${answer.status}` };
    return { ok: true, decision: 'allow', result: { status: answer.status, object: answer.json }, summary: `${summary} ${answer.status}` };
  }

  /** A read: the listener's answer within KUBE_ANSWER_TIMEOUT_MS. */
  async function read(sent: Sent, summary: string): Promise<ToolOutcome> {
    const timer = setTimeout(() => sent.abort(), KUBE_ANSWER_TIMEOUT_MS).unref();
    try {
      return outcomeOf(await sent.answered, summary, undefined);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * A write as a held action: its answer is the outcome when it comes first; once the listener says
   * it holds it, the call waits up to `waitSeconds` and otherwise returns `pending_approval` with the
   * request id, while the request waits on for the decision and the approved run (bounded by the
   * approval's timeout; then the status is `expired` or `failed`).
   */
  function write(send: (is: CallerChannel) => Sent, call: ToolCall, principal: string, summary: string, waitSeconds: number): Promise<ToolOutcome> {
    const action = new HeldAction(deps.held, principal, call.target.name);
    let timer: NodeJS.Timeout | undefined;
    const sent = send({
      via: 'mcp',
      client: call.client,
      onHeld(request) {
        if (!action.sent(request)) return;
        clearTimeout(timer);
        timer = setTimeout(() => sent.abort(), (request.timeoutSeconds + HOLD_GRACE_SECONDS) * 1000 + KUBE_ANSWER_TIMEOUT_MS).unref();
      },
    });
    timer = setTimeout(() => sent.abort(), KUBE_ANSWER_TIMEOUT_MS).unref();
    const settled = sent.answered.then((answer) => outcomeOf(answer, summary, action));
    void settled.finally(() => clearTimeout(timer));
    return answerWithin(settled, action.pending, waitSeconds);
  }

  const kubectl: McpTool<typeof args> = {
    name: 'kubectl',
    description: `One Kubernetes API request in a structured form (not a shell line): get, list, create, apply, patch, delete or scale a resource. Reads run on the read service account, masked (Secret values included); writes run at once where allowed, otherwise are held for reviewers: the call returns status pending_approval with the request id, reviewer groups and expiry (or with wait_seconds, up to ${MAX_KUBE_WAIT_SECONDS}, waits for the decision), the write runs once approved, and kubectl_request_status follows it. Answers are the API server's JSON (at most 4 MiB).`,
    args,
    available,
    async call(a, call) {
      const req = kubeRequest(a);
      if (typeof req === 'string') return refusal('error', `twokey: ${req}`);
      if (req.body !== undefined && Buffer.byteLength(req.body) > MAX_KUBE_BODY_BYTES) return refusal('error', `twokey: the body is over ${MAX_KUBE_BODY_BYTES} bytes`);
      const address = deps.addressOf(call.target.name);
      if (!address) return notServed(call.target.name);
      const summary = `${req.method} ${req.path.split('?')[0] ?? ''}`;
      const sendAs = (is: CallerChannel): Sent => send(address, call, req, a.reason, { registry: deps.channels, is });
      // A read the policy lets through at once; anything else (a write, a read it holds) may wait for reviewers.
      const allowedRead = READ_VERBS.includes(a.verb) && deps.decide(call.identity, call.target.name, { class: 'read', via: 'mcp' }).kind === 'allow';
      if (allowedRead) return read(sendAs({ via: 'mcp', client: call.client }), summary);
      const principal = principalKey(call.identity);
      return withHeldSlot(deps.held, principal, () => write(sendAs, call, principal, summary, a.wait_seconds ?? 0));
    },
  };

  const requestStatus = requestStatusTool(
    'kubectl_request_status',
    "The state of a write sent for review through kubectl: pending, approved (with the API server's answer), denied (with the reviewer comment), expired or failed.",
    deps.held,
    available,
  );

  return { protocol: 'kubernetes', tools: [tool(kubectl), requestStatus] };
}
