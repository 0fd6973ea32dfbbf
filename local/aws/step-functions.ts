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

/**
 * A Step Functions stand-in that speaks the SFN API (StartExecution, SendTaskSuccess/Failure) to the
 * unchanged SDK client and runs the real ASL file with aws-local-stepfunctions. Task states run the
 * same Lambda handlers in-process; the `.waitForTaskToken` task waits for SendTaskSuccess.
 */
export class LocalStepFunctions {
  private readonly running = new Map<string, { input: string; done: Promise<unknown> }>();
  private readonly waiters = new Map<string, Waiter>();
  private readonly aborts = new Set<() => void>();
  private machine: InstanceType<(typeof import('aws-local-stepfunctions'))['StateMachine']> | undefined;

  constructor(private readonly log: (line: string) => void) {}

  private async stateMachine() {
    if (this.machine) return this.machine;
    const { StateMachine } = await import('aws-local-stepfunctions');
    const definition = readFileSync(APPROVAL_ASL_FILE, 'utf8');
    // ${...} substitutions are CDK's job in AWS; locally the task overrides stand in for the functions.
    const substituted = definition.replace(/\$\{(\w+)\}/g, (_m, name: string) => `arn:aws:lambda:us-east-1:000000000000:function:${name}`);
    this.machine = new StateMachine(JSON.parse(substituted), { validationOptions: { checkArn: false } });
    return this.machine;
  }

  private handlers(token: string): Record<string, (input: Json) => Promise<Json>> {
    const out: Record<string, (input: Json) => Promise<Json>> = {};
    for (const [state, ref] of Object.entries(APPROVAL_WORKFLOW_TASKS)) {
      const fn = resolveHandler<unknown, unknown>(ref);
      out[state] =
        state === 'NotifyReviewersAndWait'
          ? async (input) => {
              const waiting = new Promise<Json>((resolve, reject) => this.waiters.set(token, { resolve, reject }));
              await fn((input as { Payload: unknown }).Payload);
              return waiting;
            }
          : async (input) => ({ Payload: ((await fn((input as { Payload: unknown }).Payload)) ?? null) as Json, StatusCode: 200 });
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
      overrides: { taskResourceLocalHandlers: this.handlers(token) },
      context: { Execution: { Id: arn, Name: name, StartTime: new Date().toISOString(), Input: JSON.parse(input) }, Task: { Token: token } } as never,
      noThrowOnAbort: true,
    });
    this.aborts.add(execution.abort);
    const done = execution.result
      .catch((e: unknown) => this.log(`approval workflow ${name} failed: ${e instanceof Error ? e.message : String(e)}`))
      .finally(() => {
        this.running.delete(name);
        this.waiters.delete(token);
        this.aborts.delete(execution.abort);
      });
    this.running.set(name, { input, done });
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

  stop(): void {
    for (const abort of this.aborts) abort();
    for (const w of this.waiters.values()) w.reject(new Error('stopping'));
    this.waiters.clear();
  }
}
