import { field, objects, text, type JsonObject } from '../json';
import { InputChannel, SESSION_FAILED, type CommandOptions, type ExitStatus, type SessionStreams } from './exec-session';
import type { SpdyConnection, SpdyStream } from './spdy-connection';

/** How long the server waits for the client to open the streams a session needs. */
export const STREAM_CREATION_TIMEOUT_MS = 30_000;
/** How long a finished session waits for the client to close before the server does. */
export const CLOSE_GRACE_MS = 5_000;

/**
 * exec/attach over SPDY (remotecommand v4): the client opens `error`, `stdin`, `stdout`, `stderr` and
 * `resize` streams as its options say; once all are there the session runs, the exit Status is
 * written on `error`, every stream is finished and the connection closed.
 */
export function commandOverSpdy(options: CommandOptions, run: (streams: SessionStreams) => Promise<ExitStatus>): { onStream(stream: SpdyStream): void; attach(connection: SpdyConnection): void; closed(): void } {
  const expected = new Set(['error', ...(options.stdin ? ['stdin'] : []), ...(options.stdout ? ['stdout'] : []), ...(options.stderr && !options.tty ? ['stderr'] : []), ...(options.tty ? ['resize'] : [])]);
  const streams = new Map<string, SpdyStream>();
  const stdin = new InputChannel();
  let connection: SpdyConnection | undefined;
  let started = false;
  const timer = setTimeout(() => connection?.close(), STREAM_CREATION_TIMEOUT_MS);
  const start = (): void => {
    started = true;
    clearTimeout(timer);
    const input = streams.get('stdin');
    input?.onData((d) => stdin.push(d));
    input?.onEnd(() => stdin.end());
    const write = (type: string) => (data: Buffer) => streams.get(type)?.write(data);
    void run({ stdout: write('stdout'), stderr: write('stderr'), onStdin: (l) => stdin.onData(l), onStdinEnd: (l) => stdin.onEnd(l) })
      .catch(() => SESSION_FAILED)
      .then((status) => {
        streams.get('error')?.write(Buffer.from(JSON.stringify(status)));
        for (const s of streams.values()) s.end();
        // The client closes the connection once it has read every stream; a GOAWAY now could beat
        // the data to its readers.
        setTimeout(() => connection?.close(), CLOSE_GRACE_MS).unref();
      });
  };
  return {
    attach: (c) => {
      connection = c;
    },
    /** The connection closed before the session's streams were all there: nothing is left to wait for. */
    closed: () => clearTimeout(timer),
    onStream: (stream) => {
      const type = stream.headers.get('streamtype') ?? '';
      if (!expected.has(type) || streams.has(type) || started) return stream.end();
      streams.set(type, stream);
      if (streams.size === expected.size) start();
    },
  };
}

const POD_PORT_REFUSED = (port: string, pod: JsonObject): string => {
  const uid = text(field(pod, 'metadata').uid) ?? '';
  return `error forwarding port ${port} to pod ${uid}, uid : failed to connect to localhost:${port} inside namespace "${uid}", IPv4: dial tcp4 127.0.0.1:${port}: connect: connection refused IPv6 dial tcp6: address localhost: no suitable address `;
};

/**
 * port-forward over SPDY (portforward.k8s.io): per forwarded connection the client opens an
 * `error` and a `data` stream with the same `requestID` and `port`. A port a container declares
 * answers with an echo of what it receives; any other port is refused on the error stream.
 */
export function portForwardOverSpdy(pod: JsonObject): (stream: SpdyStream) => void {
  const ports = new Set(objects(field(pod, 'spec').containers).flatMap((c) => objects(c.ports).map((p) => String(p.containerPort))));
  const errors = new Map<string, SpdyStream>();
  return (stream) => {
    const type = stream.headers.get('streamtype');
    const port = stream.headers.get('port') ?? '';
    const request = stream.headers.get('requestid') ?? '';
    if (type === 'error') {
      errors.set(request, stream);
      return;
    }
    if (type !== 'data') return stream.end();
    if (!ports.has(port)) {
      const error = errors.get(request);
      error?.write(Buffer.from(POD_PORT_REFUSED(port, pod)));
      error?.end();
      stream.end();
      return;
    }
    stream.onData((d) => stream.write(d));
    stream.onEnd(() => {
      stream.end();
      errors.get(request)?.end();
      errors.delete(request);
    });
  };
}
