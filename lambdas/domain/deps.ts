import type { ControlMessage } from '../../core/tunnel/messages';
import type { Logger } from '../../core/log';
import type { AgentStore, ConnectionStore, PolicyStore } from '../store/stores';

/** Sends one message to one agent connection. `gone` means the connection no longer exists. */
export type AgentPusher = (connectionId: string, message: ControlMessage) => Promise<'sent' | 'gone'>;

/** Everything a control-plane domain function may touch, injected by the handler. */
export interface ControlPlaneDeps {
  readonly agents: AgentStore;
  readonly connections: ConnectionStore;
  readonly policies: PolicyStore;
  readonly push: AgentPusher;
  readonly clock: () => Date;
  readonly log: Logger;
}

export type { Logger };
