import type { DynamoDBStreamEvent } from 'aws-lambda';
import type { PolicyStore } from '../../lambdas/store/stores';
import { POLICY_STREAM_HANDLER } from '../../lambdas/routes';
import { resolveHandler } from '../gateway/handlers';

/**
 * How often local mode looks for a new policy version (dynalite has no DynamoDB Streams). A query
 * costs dynalite and the SDK about 6 ms of CPU here: polled every 200 ms, an idle local stack used 3%
 * of a core on it alone.
 */
export const POLICY_STREAM_POLL_MS = 1_000;

/**
 * Stand-in for the Policies table stream: polls for a newer version and hands the stream handler the
 * INSERT record DynamoDB Streams would have delivered.
 */
export function startPolicyStream(store: PolicyStore, onError: (e: unknown) => void): { stop(): void } {
  const handler = resolveHandler<DynamoDBStreamEvent, void>(POLICY_STREAM_HANDLER);
  let lastVersion: number | undefined;
  let running = false;
  const tick = async (): Promise<void> => {
    if (running) return;
    running = true;
    try {
      const latest = await store.latest();
      const version = latest?.version ?? 0;
      if (lastVersion !== undefined && latest && version > lastVersion) {
        await handler({
          Records: [
            {
              eventName: 'INSERT',
              eventSource: 'aws:dynamodb',
              dynamodb: {
                NewImage: {
                  policyName: { S: 'default' },
                  version: { N: String(latest.version) },
                  source: { S: latest.source },
                  updatedAt: { S: latest.updatedAt },
                  updatedBy: { S: latest.updatedBy },
                },
              },
            },
          ],
        });
      }
      lastVersion = version;
    } catch (e) {
      onError(e);
    } finally {
      running = false;
    }
  };
  void tick();
  const timer = setInterval(() => void tick(), POLICY_STREAM_POLL_MS);
  return { stop: () => clearInterval(timer) };
}
