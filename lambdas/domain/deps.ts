import type { ControlMessage } from '../../core/tunnel/messages';
import type { Logger } from '../../core/log';
import type { ApprovalStore } from '../store/approval-store';
import type { AgentStore, ConnectionStore, PolicyStore } from '../store/stores';

/** Step Functions, as the approval domain uses it. */
export interface ApprovalWorkflow {
  /** Starts the execution named by the request id; starting it again is harmless. */
  start(requestId: string): Promise<void>;
  /** Completes the waiting task (the callback of `.waitForTaskToken`). */
  complete(taskToken: string, output: { outcome: 'approved' | 'denied' }): Promise<void>;
}

export interface Mail {
  readonly to: string;
  readonly subject: string;
  readonly text: string;
  readonly html: string;
}

export interface Mailer {
  send(mail: Mail): Promise<void>;
}

/** Sends one message to one agent connection. `gone` means the connection no longer exists. */
export type AgentPusher = (connectionId: string, message: ControlMessage) => Promise<'sent' | 'gone'>;

/** Everything a control-plane domain function may touch, injected by the handler. */
export interface ControlPlaneDeps {
  readonly agents: AgentStore;
  readonly connections: ConnectionStore;
  readonly policies: PolicyStore;
  readonly approvals: ApprovalStore;
  readonly workflow: ApprovalWorkflow;
  readonly mailer: Mailer;
  /** The key approval links are signed with (from Secrets Manager; never in the template or plain env). */
  readonly linkKey: () => Promise<Buffer>;
  /** Base URL of the HTTP API, for links in emails. */
  readonly publicUrl: string;
  readonly push: AgentPusher;
  readonly clock: () => Date;
  readonly log: Logger;
}

export type { Logger };
