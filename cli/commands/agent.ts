import { startAgent } from '../../agent/agent';
import { loadAgentConfig } from '../../agent/config';
import { parse, UsageError } from '../args';
import { listenerFactories, mcpEndpoint } from '../../agent/listeners';

/** `twokey agent --config FILE`: runs a data-plane agent until SIGINT/SIGTERM. */
export async function agentCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { config: { type: 'string' } });
  if (!values.config) throw new UsageError('usage: twokey agent --config FILE');
  const config = await loadAgentConfig(values.config);
  const agent = await startAgent(config, { listenerFactories, mcpEndpoint });
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      void agent.stop().then(() => resolve());
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}
