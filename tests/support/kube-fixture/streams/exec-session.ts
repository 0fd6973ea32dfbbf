import { field, objects, text, type JsonObject } from '../json';
import { Shell } from './shell';

/** What `exec` and `attach` ask for (PodExecOptions / PodAttachOptions from the query). */
export interface CommandOptions {
  command: string[];
  container: string;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
  /** attach joins the container's main process: here, an interactive shell. */
  attach: boolean;
}

/** The transport-neutral streams a session runs over (WebSocket channels or SPDY streams). */
export interface SessionStreams {
  stdout(data: Buffer): void;
  stderr(data: Buffer): void;
  onStdin(listener: (data: Buffer) => void): void;
  onStdinEnd(listener: () => void): void;
}

/** The `metav1.Status` written on the error channel when the command ends (remotecommand v4/v5). */
export type ExitStatus = JsonObject;

const truthy = (v: string | null): boolean => v === 'true' || v === '1';

/** Reads PodExecOptions from the query, or a reason the server refuses with 400 before upgrading. */
export function commandOptions(pod: JsonObject, query: URLSearchParams, attach: boolean): CommandOptions | string {
  const names = objects(field(pod, 'spec').containers).map((c) => text(c.name) ?? '');
  const annotated = text(field(field(pod, 'metadata'), 'annotations')['kubectl.kubernetes.io/default-container']);
  const container = query.get('container') ?? (names.length === 1 ? names[0] : annotated);
  const podName = text(field(pod, 'metadata').name) ?? '';
  if (!container) return `a container name must be specified for pod ${podName}, choose one of: [${names.join(' ')}]`;
  if (!names.includes(container)) return `container ${container} is not valid for pod ${podName}`;
  const command = query.getAll('command');
  if (!attach && command.length === 0) return 'you must specify at least 1 command';
  const options = { command, container, stdin: truthy(query.get('stdin')), stdout: truthy(query.get('stdout')), stderr: truthy(query.get('stderr')), tty: truthy(query.get('tty')), attach };
  if (!options.stdin && !options.stdout && !options.stderr) return 'you must specify at least 1 of stdin, stdout, stderr';
  return options;
}

function environment(pod: JsonObject, container: string): Record<string, string> {
  const spec = objects(field(pod, 'spec').containers).find((c) => c.name === container);
  const env: Record<string, string> = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOSTNAME: text(field(pod, 'metadata').name) ?? '', HOME: '/root' };
  for (const e of objects(spec?.env)) if (text(e.name)) env[text(e.name) ?? ''] = text(e.value) ?? '';
  env.KUBERNETES_SERVICE_HOST = '10.96.0.1';
  env.KUBERNETES_SERVICE_PORT = '443';
  return env;
}

const success = (): ExitStatus => ({ metadata: {}, status: 'Success' });

/** The Status a session that broke (not the command's failure) ends with; no internals in it. */
export const SESSION_FAILED: ExitStatus = { metadata: {}, status: 'Failure', message: 'Internal error occurred: the session failed', reason: 'InternalError', code: 500 };

function exitStatus(code: number, command: string[]): ExitStatus {
  if (code === 0) return success();
  return {
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: error executing command [${command.join(' ')}], exit code ${code}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(code) }] },
  };
}

const notFound = (name: string): ExitStatus => ({
  metadata: {},
  status: 'Failure',
  message: `Internal error occurred: error executing command in container: failed to exec in container: failed to start exec: OCI runtime exec failed: exec failed: unable to start container process: exec: "${name}": executable file not found in $PATH: unknown`,
  reason: 'InternalError',
  details: { causes: [{ message: `exec: "${name}": executable file not found in $PATH` }] },
  code: 500,
});

/**
 * Runs an exec or attach session in the pod's scripted shell: `sh` (or an attach) with stdin reads
 * commands until `exit` or end of input; anything else runs once. Resolves with the exit Status.
 */
export async function runSession(pod: JsonObject, files: ReadonlyMap<string, string>, options: CommandOptions, streams: SessionStreams): Promise<ExitStatus> {
  const shell = new Shell({ env: environment(pod, options.container), files, tty: options.tty }, {
    stdout: (t) => streams.stdout(Buffer.from(t)),
    stderr: (t) => streams.stderr(Buffer.from(t)),
  });
  const [name, ...args] = options.attach ? ['sh'] : options.command;
  const interactive = options.stdin && (options.attach || (['sh', '/bin/sh', 'bash', '/bin/bash'].includes(name ?? '') && args.length === 0));
  if (interactive) {
    streams.onStdin((data) => shell.input(data));
    streams.onStdinEnd(() => shell.endOfInput());
    return exitStatus(await shell.interactive(), options.command);
  }
  if (name === 'cat' && args.length === 0 && options.stdin) {
    return new Promise((resolve) => {
      streams.onStdin((data) => streams.stdout(data));
      streams.onStdinEnd(() => resolve(success()));
    });
  }
  if (!Shell.has(name) && !['bash', '/bin/bash'].includes(name ?? '')) return notFound(name ?? '');
  return exitStatus(await shell.execute(['bash', '/bin/bash'].includes(name ?? '') ? ['sh', ...args] : options.command), options.command);
}

/** Stdin as it arrives from a transport, held until the session listens (data can precede it). */
export class InputChannel {
  private readonly pending: Buffer[] = [];
  private ended = false;
  private dataListener: ((data: Buffer) => void) | undefined;
  private endListener: (() => void) | undefined;

  push(data: Buffer): void {
    if (this.ended) return;
    if (this.dataListener) this.dataListener(data);
    else this.pending.push(data);
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.endListener?.();
  }

  onData(listener: (data: Buffer) => void): void {
    this.dataListener = listener;
    for (const p of this.pending.splice(0)) listener(p);
  }

  onEnd(listener: () => void): void {
    this.endListener = listener;
    if (this.ended) listener();
  }
}
