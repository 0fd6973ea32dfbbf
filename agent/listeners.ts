import type { ListenerFactories } from './agent';
import { startKubernetesListener } from './kubernetes/listener';
import { startPostgresListener } from './postgres/listener';

/** The protocol listener for each target protocol this agent build serves. */
export const listenerFactories: ListenerFactories = {
  postgres: (target, context) => startPostgresListener(target, context),
  kubernetes: (target, context) => startKubernetesListener(target, context),
};
