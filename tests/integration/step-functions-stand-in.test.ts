import { APPROVAL_WORKFLOW_TASKS } from '../../lambdas/routes';
import { LocalStepFunctions, type TaskFunctions } from '../../local/aws/step-functions';

/**
 * The timers set from now on that are still pending (neither fired nor cleared): an execution holds
 * its own (the ASL's TimeoutSeconds), its current state's timeout, and a retry's wait.
 */
function pendingTimers(): Set<NodeJS.Timeout> {
  const pending = new Set<NodeJS.Timeout>();
  const realSet = globalThis.setTimeout;
  const realClear = globalThis.clearTimeout;
  jest.spyOn(globalThis, 'setTimeout').mockImplementation(((fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const timer = realSet(() => {
      pending.delete(timer);
      fn(...args);
    }, ms);
    pending.add(timer);
    return timer;
  }) as typeof setTimeout);
  jest.spyOn(globalThis, 'clearTimeout').mockImplementation((timer) => {
    pending.delete(timer as NodeJS.Timeout);
    realClear(timer);
  });
  return pending;
}
/** One turn of the event loop: every microtask queued before it has run. */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

const PENDING = { status: 'pending', kind: 'access', timeoutSeconds: 900 };

/** Task functions that record which states ran; `overrides` replace some of them. */
function recordingFunctions(calls: string[], overrides: Record<string, (payload: unknown) => Promise<unknown>> = {}): TaskFunctions {
  // RecordPending's answer. No other result is read: their ResultPath is null, and the waiting state's result is the decision sent back.
  const pass = async (): Promise<unknown> => PENDING;
  return Object.fromEntries(
    Object.keys(APPROVAL_WORKFLOW_TASKS).map((state) => [
      state,
      async (payload: unknown) => {
        calls.push(state);
        return (overrides[state] ?? pass)(payload);
      },
    ]),
  );
}

describe('the Step Functions stand-in (the real approval ASL file, interpreted)', () => {
  afterEach(() => jest.restoreAllMocks());

  it('runs an approved request through to the agent, and leaves no timer behind', async () => {
    const calls: string[] = [];
    const notified = deferred<string>();
    const agentTold = deferred();
    const sfn = new LocalStepFunctions(() => undefined, recordingFunctions(calls, {
      NotifyReviewersAndWait: async (p) => notified.resolve((p as { taskToken: string }).taskToken),
      NotifyAgent: async () => agentTold.resolve(),
    }));
    const timers = pendingTimers();

    await sfn.startExecution('req-approved', JSON.stringify({ requestId: 'req-approved' }));
    sfn.sendTaskSuccess(await notified.promise, JSON.stringify({ outcome: 'approved' }));
    await agentTold.promise;
    await turn();

    expect(calls).toEqual(['RecordPending', 'NotifyReviewersAndWait', 'RecordDecision', 'NotifyAgent']);
    expect(timers.size).toBe(0);
    sfn.stop();
  });

  it('ends an execution waiting for reviewers when stopped: its timers are cleared and no later state runs', async () => {
    const calls: string[] = [];
    const notified = deferred<string>();
    const sfn = new LocalStepFunctions(() => undefined, recordingFunctions(calls, { NotifyReviewersAndWait: async (p) => notified.resolve((p as { taskToken: string }).taskToken) }));
    const timers = pendingTimers();
    await sfn.startExecution('req-waiting', JSON.stringify({ requestId: 'req-waiting' }));
    const token = await notified.promise;
    expect(timers.size).toBeGreaterThan(0);

    sfn.stop();
    await turn();

    expect(timers.size).toBe(0);
    expect(calls).toEqual(['RecordPending', 'NotifyReviewersAndWait']);
    expect(() => sfn.sendTaskSuccess(token, JSON.stringify({ outcome: 'approved' }))).toThrow('no task is waiting for this token');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(calls).toEqual(['RecordPending', 'NotifyReviewersAndWait']);
  });

  it('cuts short a retry\'s wait when stopped, and does not run the state again', async () => {
    const calls: string[] = [];
    const failed = deferred();
    const sfn = new LocalStepFunctions(() => undefined, recordingFunctions(calls, {
      RecordPending: async () => {
        failed.resolve();
        throw Object.assign(new Error('throttled'), { name: 'Lambda.TooManyRequestsException' });
      },
    }));
    const timers = pendingTimers();
    await sfn.startExecution('req-retrying', JSON.stringify({ requestId: 'req-retrying' }));
    await failed.promise;
    await turn();
    expect(timers.size).toBeGreaterThan(0);

    sfn.stop();
    await turn();

    expect(timers.size).toBe(0);
    expect(calls).toEqual(['RecordPending']);
  });

  it('fails at once a task that is still running when stopped', async () => {
    const calls: string[] = [];
    const started = deferred();
    const never = new Promise<unknown>(() => undefined);
    const sfn = new LocalStepFunctions(() => undefined, recordingFunctions(calls, {
      RecordPending: () => {
        started.resolve();
        return never;
      },
    }));
    const timers = pendingTimers();
    await sfn.startExecution('req-running', JSON.stringify({ requestId: 'req-running' }));
    await started.promise;

    sfn.stop();
    await turn();

    expect(timers.size).toBe(0);
    expect(calls).toEqual(['RecordPending']);
  });
});
