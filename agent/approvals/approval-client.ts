import { randomUUID } from 'node:crypto';
import type { ApprovalAsk, ApprovalKind } from '../../core/approval/request';
import { principalKey } from '../../core/identity/identity';
import type { Logger } from '../../core/log';
import { TUNNEL_PROTOCOL_VERSION, type ControlMessage } from '../../core/tunnel/messages';
import type { TunnelClient } from '../tunnel/tunnel-client';

/** How long the control plane has to accept a request before the agent gives up (fail closed). */
export const APPROVAL_INTAKE_TIMEOUT_MS = 10_000;
/**
 * How long past its own timeout a request's decision is still taken: one re-delivered after the
 * tunnel reconnects. Later decisions are acknowledged and ignored (the caller asks again).
 */
export const DECISION_GRACE_MS = 60 * 60_000;
/** Requests awaiting a decision, one-time grants and write windows, each. */
export const MAX_APPROVAL_ENTRIES = 10_000;

export type Pending = Extract<ControlMessage, { type: 'approval.pending' }>;
export type DecisionMessage = Extract<ControlMessage, { type: 'approval.decision' }>;

export type SubmitResult = { ok: true; pending: Pending } | { ok: false; reason: string };

export const newRequestId = (): string => randomUUID();

/** What this agent asked, by request id: a decision acts on this, not on what the decision message repeats. */
interface Asked {
  readonly principal: string;
  readonly target: string;
  readonly kind: ApprovalKind;
  readonly sha256: string;
  /** After this a decision is no longer taken. */
  readonly until: number;
}

interface OneTimeGrant {
  readonly principal: string;
  readonly target: string;
  readonly sha256: string;
  readonly until: number;
}

/**
 * The agent's side of approvals: sends requests over the tunnel, waits for decisions, and keeps the
 * approvals that arrive after the caller stopped waiting as one-time grants (and write windows).
 *
 * A decision acts once: only on a request this agent sent and has no decision for yet, and it then
 * either wakes the waiting caller or becomes a grant, never both. A decision delivered again (two
 * connections, a retry, re-delivery after a lost ack) finds nothing to act on. Grants and windows are
 * keyed by the caller's principal (issuer and subject) and the target.
 */
export class ApprovalClient {
  private readonly intake = new Map<string, (r: SubmitResult) => void>();
  private readonly waiting = new Map<string, (d: DecisionMessage) => void>();
  private readonly asked = new Map<string, Asked>();
  /** One-time grants by request id: several identical requests approved late are each run once. */
  private readonly oneTime = new Map<string, OneTimeGrant>();
  private readonly windows = new Map<string, { readonly until: number }>();

  constructor(
    private readonly tunnel: TunnelClient,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    tunnel.onMessage((m) => this.onMessage(m));
  }

  private onMessage(message: ControlMessage): void {
    if (message.type === 'approval.pending') {
      this.intake.get(message.requestId)?.({ ok: true, pending: message });
      this.intake.delete(message.requestId);
    } else if (message.type === 'error' && message.inReplyTo && this.intake.has(message.inReplyTo)) {
      this.intake.get(message.inReplyTo)?.({ ok: false, reason: message.message });
      this.intake.delete(message.inReplyTo);
    } else if (message.type === 'approval.decision') {
      this.tunnel.send({ type: 'approval.ack', v: TUNNEL_PROTOCOL_VERSION, requestId: message.requestId });
      this.decided(message);
    }
  }

  private decided(message: DecisionMessage): void {
    const { requestId } = message;
    const asked = this.asked.get(requestId);
    if (!asked || asked.until <= this.now()) {
      this.log.info('approval.decision.ignored', { requestId, outcome: message.outcome, reason: 'not awaiting a decision (already decided, or not asked by this agent)' });
      return;
    }
    this.asked.delete(requestId);
    const waiter = this.waiting.get(requestId);
    this.waiting.delete(requestId);
    let decision = message;
    if (message.kind !== asked.kind || message.target !== asked.target || message.sha256 !== asked.sha256 || principalKey(message) !== asked.principal) {
      this.log.error('approval.decision.mismatch', { requestId, kind: message.kind, target: message.target });
      decision = { ...message, outcome: 'failed', decidedBy: [], comment: 'the decision does not match the request' };
    }
    if (decision.outcome === 'approved') {
      const until = Date.parse(decision.validUntil);
      if (asked.kind === 'window') this.remember(this.windows, `${asked.principal}\n${asked.target}`, { until });
      else if (!waiter) this.remember(this.oneTime, requestId, { principal: asked.principal, target: asked.target, sha256: asked.sha256, until });
    }
    this.log.info('approval.decision', { requestId, outcome: decision.outcome, waiting: waiter !== undefined });
    waiter?.(decision);
  }

  /** Adds an entry, first dropping expired ones when full; false (nothing kept) when still full. */
  private remember<V extends { readonly until: number }>(map: Map<string, V>, key: string, value: V): boolean {
    if (map.size >= MAX_APPROVAL_ENTRIES) {
      const now = this.now();
      for (const [k, v] of map) if (v.until <= now) map.delete(k);
    }
    if (map.size >= MAX_APPROVAL_ENTRIES) return false;
    map.set(key, value);
    return true;
  }

  /** Sends the request; resolves once the control plane accepted it (or refused, or could not be reached). */
  submit(ask: ApprovalAsk): Promise<SubmitResult> {
    if (!this.tunnel.connected) return Promise.resolve({ ok: false, reason: 'the control plane cannot be reached, so no approval can be requested' });
    const until = this.now() + ask.approval.timeoutSeconds * 1000 + DECISION_GRACE_MS;
    if (!this.remember(this.asked, ask.requestId, { principal: principalKey(ask.requester), target: ask.target, kind: ask.kind, sha256: ask.sha256, until })) {
      return Promise.resolve({ ok: false, reason: 'this agent has too many requests awaiting a decision' });
    }
    return new Promise((resolve) => {
      const failed = (reason: string): void => {
        this.asked.delete(ask.requestId);
        this.intake.delete(ask.requestId);
        resolve({ ok: false, reason });
      };
      const timer = setTimeout(() => failed('the control plane did not accept the approval request in time'), APPROVAL_INTAKE_TIMEOUT_MS);
      this.intake.set(ask.requestId, (r) => {
        clearTimeout(timer);
        if (r.ok) resolve(r);
        else failed(r.reason);
      });
      const sent = this.tunnel.send({
        type: 'approval.request',
        v: TUNNEL_PROTOCOL_VERSION,
        ...ask,
        params: ask.params ? [...ask.params] : undefined,
        requester: { ...ask.requester, groups: [...ask.requester.groups] },
        approval: { ...ask.approval, groups: [...ask.approval.groups] },
      });
      if (!sent.ok) {
        clearTimeout(timer);
        failed(sent.error.message);
      }
    });
  }

  /** Waits for the decision, at most `holdMs`; undefined when the hold time passed (the request stays open). */
  waitForDecision(requestId: string, holdMs: number, signal?: AbortSignal): Promise<DecisionMessage | undefined> {
    return new Promise((resolve) => {
      const onAbort = (): void => done(undefined);
      const done = (d: DecisionMessage | undefined): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.waiting.delete(requestId);
        resolve(d);
      };
      const timer = setTimeout(() => done(undefined), holdMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.set(requestId, done);
    });
  }

  /**
   * An approval that arrived after the caller left: the same principal may run the identical request
   * (same target, same hash of what is built and sent) once. True when a grant was taken (and is gone).
   */
  takeOneTimeGrant(principal: string, target: string, sha256: string): boolean {
    const now = this.now();
    for (const [requestId, g] of this.oneTime) {
      if (g.principal !== principal || g.target !== target || g.sha256 !== sha256) continue;
      this.oneTime.delete(requestId);
      if (g.until > now) return true;
    }
    return false;
  }

  windowOpen(principal: string, target: string): boolean {
    const window = this.windows.get(`${principal}\n${target}`);
    return window !== undefined && window.until > this.now();
  }
}
