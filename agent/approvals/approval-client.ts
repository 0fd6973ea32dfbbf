import { randomUUID } from 'node:crypto';
import type { ApprovalAsk } from '../../core/approval/request';
import type { Logger } from '../../core/log';
import { TUNNEL_PROTOCOL_VERSION, type ControlMessage } from '../../core/tunnel/messages';
import type { TunnelClient } from '../tunnel/tunnel-client';

/** How long the control plane has to accept a request before the agent gives up (fail closed). */
export const APPROVAL_INTAKE_TIMEOUT_MS = 10_000;
const MAX_GRANTS = 10_000;

export type Pending = Extract<ControlMessage, { type: 'approval.pending' }>;
export type DecisionMessage = Extract<ControlMessage, { type: 'approval.decision' }>;

export type SubmitResult = { ok: true; pending: Pending } | { ok: false; reason: string };

export const newRequestId = (): string => randomUUID();

/**
 * The agent's side of approvals: sends requests over the tunnel, waits for decisions, and keeps the
 * approvals that arrive after the caller stopped waiting as one-time grants (and write windows).
 */
export class ApprovalClient {
  private readonly intake = new Map<string, (r: SubmitResult) => void>();
  private readonly waiting = new Map<string, (d: DecisionMessage) => void>();
  private readonly oneTime = new Map<string, number>();
  private readonly windows = new Map<string, number>();

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
      const waiter = this.waiting.get(message.requestId);
      this.waiting.delete(message.requestId);
      if (message.outcome === 'approved') {
        const until = Date.parse(message.validUntil);
        if (message.kind === 'window') this.remember(this.windows, `${message.subject}\n${message.target}`, until);
        else if (!waiter) this.remember(this.oneTime, `${message.subject}\n${message.target}\n${message.sha256}`, until);
      }
      this.log.info('approval.decision', { requestId: message.requestId, outcome: message.outcome, waiting: waiter !== undefined });
      waiter?.(message);
    }
  }

  private remember(map: Map<string, number>, key: string, until: number): void {
    if (map.size >= MAX_GRANTS) {
      for (const [k, v] of map) if (v <= this.now()) map.delete(k);
    }
    if (map.size < MAX_GRANTS) map.set(key, until);
  }

  /** Sends the request; resolves once the control plane accepted it (or refused, or could not be reached). */
  submit(ask: ApprovalAsk): Promise<SubmitResult> {
    if (!this.tunnel.connected) return Promise.resolve({ ok: false, reason: 'the control plane cannot be reached, so no approval can be requested' });
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.intake.delete(ask.requestId);
        resolve({ ok: false, reason: 'the control plane did not accept the approval request in time' });
      }, APPROVAL_INTAKE_TIMEOUT_MS);
      this.intake.set(ask.requestId, (r) => {
        clearTimeout(timer);
        resolve(r);
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
        this.intake.delete(ask.requestId);
        resolve({ ok: false, reason: sent.error.message });
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

  /** An approval that arrived after the caller left: the identical statement may run once. */
  takeOneTimeGrant(subject: string, target: string, sha256: string): boolean {
    const key = `${subject}\n${target}\n${sha256}`;
    const until = this.oneTime.get(key);
    if (until === undefined) return false;
    this.oneTime.delete(key);
    return until > this.now();
  }

  /** A write window this session's caller was just granted (also kept if the decision arrived without a waiter). */
  openWindow(subject: string, target: string, until: number): void {
    this.remember(this.windows, `${subject}\n${target}`, until);
  }

  windowOpen(subject: string, target: string): boolean {
    const until = this.windows.get(`${subject}\n${target}`);
    return until !== undefined && until > this.now();
  }
}
