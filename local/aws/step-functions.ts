import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { APPROVAL_WORKFLOW_TASKS } from '../../lambdas/routes';
import { resolveHandler } from '../gateway/handlers';
import { AwsApiError, operationOf, readJsonBody, sendAwsError, sendAwsJson } from './json-protocol';

// aws-local-stepfunctions 3 is written for Node 22; on Node 20 every Task fails without this
// (and the failure lands silently in a Catch of States.ALL).
const promiseStatics = Promise as unknown as { withResolvers?: unknown };
promiseStatics.withResolvers ??= function withResolvers<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
};

export const APPROVAL_ASL_FILE = join(__dirname, '..', '..', 'state-machines', 'approval.asl.json');
export const LOCAL_STATE_MACHINE_ARN = 'arn:aws:states:us-east-1:000000000000:stateMachine:twokey-approval';

type Json = Parameters<(typeof import('aws-local-stepfunctions'))['StateMachine']['prototype']['run']>[0];

interface Waiter {
  resolve: (output: Json) => void;
  reject: (e: Error) => void;
}

/** The Lambda function each Task state invokes, by state name (its `Payload` in, its result out). */
export type TaskFunctions = Readonly<Record<string, (payload: unknown) => Promise<unknown>>>;

/** A Lambda invoke task's input is the function's event under `Payload` (the ASL's Parameters). */
const payload = (input: Json): unknown => (input as { Payload: unknown }).Payload;

/** The control plane's own handlers for the approval workflow's Task states. */
const approvalWorkflowFunctions = (): TaskFunctions =>
  Object.fromEntries(Object.entries(APPROVAL_WORKFLOW_TASKS).map(([state, ref]) => [state, resolveHandler<unknown, unknown>(ref)]));

/**
 * Ends a state when the stand-in stops, as StopExecution does: the interpreter neither retries nor
 * catches it (its own States.Runtime errors behave so), so the execution ends at the state it is in
 * and none of its Retry, Catch or next states runs after stop().
 */
export class ExecutionStoppedError extends Error {
  override name = 'ExecutionStoppedError';
  readonly isRetryable = false;
  readonly isCatchable = false;
  constructor() {
    super('the Step Functions stand-in stopped');
  }
}

/**
 * A Step Functions stand-in that speaks the SFN API (StartExecution, SendTaskSuccess/Failure) to the
 * unchanged SDK client and runs the real ASL file with aws-local-stepfunctions. Task states run the
 * same Lambda handlers in-process; a `.waitForTaskToken` task waits for SendTaskSuccess.
 */
export class LocalStepFunctions {
  private readonly running = new Map<string, { input: string; abort: () => void }>();
  private readonly waiters = new Map<string, Waiter>();
  /** Aborted by stop(): every task under way fails at once, and any the interpreter starts after it fails at its start. */
  private readonly stopping = new AbortController();
  private machine: { run: InstanceType<(typeof import('aws-local-stepfunctions'))['StateMachine']>['run']; waitingStates: ReadonlySet<string> } | undefined;

  constructor(
    private readonly log: (line: string) => void,
    private readonly functions: TaskFunctions = approvalWorkflowFunctions(),
  ) {}

  private async stateMachine() {
    if (this.machine) return this.machine;
    const { StateMachine } = await import('aws-local-stepfunctions');
    const definition = readFileSync(APPROVAL_ASL_FILE, 'utf8');
    // ${...} substitutions are CDK's job in AWS; locally the task overrides stand in for the functions.
    const substituted = definition.replace(/\$\{(\w+)\}/g, (_m, name: string) => `arn:aws:lambda:us-east-1:000000000000:function:${name}`);
    const parsed = JSON.parse(substituted) as { States: Record<string, { Resource?: string }> };
    const machine = new StateMachine(parsed as never, { validationOptions: { checkArn: false } });
    const waitingStates = new Set(Object.entries(parsed.States).filter(([, state]) => state.Resource?.endsWith('.waitForTaskToken')).map(([name]) => name));
    this.machine = { run: machine.run.bind(machine), waitingStates };
    return this.machine;
  }

  /** Settles as `work` does, or fails with ExecutionStoppedError as soon as the stand-in stops. */
  private untilStopped<T>(work: () => Promise<T>): Promise<T> {
    const signal = this.stopping.signal;
    if (signal.aborted) return Promise.reject(new ExecutionStoppedError());
    return new Promise<T>((resolve, reject) => {
      const onStop = (): void => reject(new ExecutionStoppedError());
      signal.addEventListener('abort', onStop, { once: true });
      work()
        .then(resolve, reject)
        .finally(() => signal.removeEventListener('abort', onStop));
    });
  }

  private handlers(token: string, waitingStates: ReadonlySet<string>): Record<string, (input: Json) => Promise<Json>> {
    const out: Record<string, (input: Json) => Promise<Json>> = {};
    for (const [state, fn] of Object.entries(this.functions)) {
      out[state] = waitingStates.has(state)
        ? (input) =>
            this.untilStopped(async () => {
              const waiting = new Promise<Json>((resolve, reject) => this.waiters.set(token, { resolve, reject }));
              await fn(payload(input));
              return waiting;
            })
        : (input) => this.untilStopped(async () => ({ Payload: ((await fn(payload(input))) ?? null) as Json, StatusCode: 200 }));
    }
    return out;
  }

  async startExecution(name: string, input: string): Promise<string> {
    const existing = this.running.get(name);
    const arn = `${LOCAL_STATE_MACHINE_ARN.replace(':stateMachine:', ':execution:')}:${name}`;
    if (existing) {
      if (existing.input !== input) throw new AwsApiError(400, 'ExecutionAlreadyExists', `execution ${name} exists with another input`);
      return arn;
    }
    const machine = await this.stateMachine();
    const token = randomBytes(24).toString('base64url');
    const execution = machine.run(JSON.parse(input) as Json, {
      overrides: { taskResourceLocalHandlers: this.handlers(token, machine.waitingStates) },
      context: { Execution: { Id: arn, Name: name, StartTime: new Date().toISOString(), Input: JSON.parse(input) }, Task: { Token: token } } as never,
      noThrowOnAbort: true,
    });
    this.running.set(name, { input, abort: execution.abort });
    void execution.result
      .catch((e: unknown) => this.log(`approval workflow ${name} failed: ${e instanceof Error ? e.message : String(e)}`))
      .finally(() => {
        this.running.delete(name);
        this.waiters.delete(token);
      });
    return arn;
  }

  sendTaskSuccess(token: string, output: string): void {
    const waiter = this.waiters.get(token);
    if (!waiter) throw new AwsApiError(400, 'TaskDoesNotExist', 'no task is waiting for this token');
    this.waiters.delete(token);
    waiter.resolve(JSON.parse(output) as Json);
  }

  sendTaskFailure(token: string, error: string): void {
    const waiter = this.waiters.get(token);
    if (!waiter) throw new AwsApiError(400, 'TaskDoesNotExist', 'no task is waiting for this token');
    this.waiters.delete(token);
    waiter.reject(Object.assign(new Error(error), { name: error }));
  }

  async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const body = await readJsonBody(req);
      switch (operationOf(req)) {
        case 'StartExecution': {
          const executionArn = await this.startExecution(String(body.name ?? randomUUID()), String(body.input ?? '{}'));
          return sendAwsJson(res, { executionArn, startDate: Date.now() / 1000 });
        }
        case 'SendTaskSuccess':
          this.sendTaskSuccess(String(body.taskToken), String(body.output ?? '{}'));
          return sendAwsJson(res, {});
        case 'SendTaskFailure':
          this.sendTaskFailure(String(body.taskToken), String(body.error ?? 'Failed'));
          return sendAwsJson(res, {});
        default:
          throw new AwsApiError(400, 'UnknownOperationException', `operation ${operationOf(req)} is not available locally`);
      }
    } catch (e) {
      sendAwsError(res, e);
    }
  }

  /**
   * Ends every execution. Aborting one settles its result at once, but the interpreter's loop goes on
   * until its state settles (keeping that state's timeout timer and the execution's own): the task
   * under way is failed with ExecutionStoppedError too, and a retry's wait is cut short by the abort,
   * so the loop ends within the same turn of the event loop, with its timers cleared.
   */
  stop(): void {
    this.stopping.abort();
    for (const { abort } of this.running.values()) abort();
    this.waiters.clear();
  }
}
