import type { ListenerFactory } from './agent';
import type { TargetConfig } from './config';
import { startPostgresListener } from './postgres/listener';

/** The protocol listener for each target protocol this agent build serves. */
export const listenerFactories: Partial<Record<TargetConfig['protocol'], ListenerFactory>> = {
  postgres: (target, context) => startPostgresListener(target, context),
};
