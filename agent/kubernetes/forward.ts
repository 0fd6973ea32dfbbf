import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { pipeline, Transform, type Readable } from 'node:stream';
import { sendStatus } from './status';
import type { KubeUpstream, UpstreamRequest } from './upstream';

/** Time the API server has to start answering; watches and follows then stream for as long as they last. */
export const UPSTREAM_HEADERS_TIMEOUT_MS = 60_000;
/** What a caller is told when the API server cannot be reached (the cause is recorded, not shown). */
export const UPSTREAM_UNREACHABLE = 'twokey: the API server cannot be reached';
/** Request bodies the agent passes on (the API server's own limit is 3 MiB). */
export const MAX_REQUEST_BODY_BYTES = 3 * 1024 * 1024;

/** Response headers passed back to the caller; the rest (cookies, upstream auth hints) stay with the agent. */
const RESPONSE_HEADERS = ['content-type', 'warning', 'audit-id', 'x-kubernetes-pf-flowschema-uid', 'x-kubernetes-pf-prioritylevel-uid', 'cache-control', 'location', 'retry-after'] as const;

/** A Location that is a path on the same host (`/...`, not `//host` nor a scheme), free of backslashes and controls. */
const SAME_HOST_LOCATION = /^\/(?![/\\])[\x21-\x7e]*$/;

/** What became of a forwarded request, for its recording. */
export interface Forwarded {
  readonly status: number;
  /** Bytes sent to the caller. */
  readonly bytes: number;
  /** Why it ended early, if it did. */
  readonly error?: string;
}

/** Counts bytes through, and fails the stream past a limit (a request body over MAX_REQUEST_BODY_BYTES). */
export class ByteLimit extends Transform {
  bytes = 0;

  constructor(private readonly limit: number) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: (e?: Error | null, data?: Buffer) => void): void {
    this.bytes += chunk.length;
    if (this.bytes > this.limit) return done(new RequestTooLargeError(`twokey: the request body is over ${this.limit} bytes`));
    done(null, chunk);
  }
}

export class RequestTooLargeError extends Error {
  override name = 'RequestTooLargeError';
}

export class UpstreamUnavailableError extends Error {
  override name = 'UpstreamUnavailableError';
}

/**
 * Sends one request upstream and streams the answer back: the body (the caller's stream, bounded, or
 * bytes the agent holds) goes up, the response comes down through `transform` (masking, when it
 * applies) chunk by chunk with backpressure, so that a watch or `logs -f` is never buffered whole.
 * Resolves when the caller has the whole answer or either side is gone. A `notice` goes to the caller
 * as a Warning header.
 */
/** The response's masking, chosen when its headers arrive: a transform, none, or a refusal (the reason) when it cannot be masked. */
export type ResponseTransform = (headers: IncomingHttpHeaders, status: number) => Transform | string | undefined;

export async function forward(upstream: KubeUpstream, request: UpstreamRequest, body: Readable | Buffer | undefined, res: ServerResponse, transform: ResponseTransform, notice?: string): Promise<Forwarded> {
  const up = await upstream.request(request);
  return new Promise<Forwarded>((resolve) => {
    let sent = 0;
    let settled = false;
    const done = (f: Forwarded): void => {
      if (settled) return;
      settled = true;
      clearTimeout(headersTimer);
      resolve({ ...f, bytes: sent });
    };
    const headersTimer = setTimeout(() => {
      up.destroy(new UpstreamUnavailableError('the API server did not answer in time'));
    }, UPSTREAM_HEADERS_TIMEOUT_MS);
    res.once('close', () => {
      // Only a caller gone early cuts the upstream request; a finished one leaves its socket to the keep-alive pool.
      if (res.writableFinished) return done({ status: res.statusCode, bytes: sent });
      up.destroy();
      done({ status: res.statusCode, bytes: sent, error: 'the caller went away' });
    });
    up.once('error', (e) => {
      // The cause (an address, a TLS error) goes to the recording, not to the caller.
      const timedOut = e instanceof UpstreamUnavailableError;
      if (!res.headersSent) sendStatus(res, timedOut ? 'Timeout' : 'ServiceUnavailable', timedOut ? `twokey: ${e.message}` : UPSTREAM_UNREACHABLE);
      else res.destroy();
      done({ status: res.headersSent ? res.statusCode : 503, bytes: sent, error: e.message });
    });
    up.once('response', (answer: IncomingMessage) => {
      clearTimeout(headersTimer);
      const status = answer.statusCode ?? 502;
      const masking = transform(answer.headers, status);
      if (typeof masking === 'string') {
        answer.destroy();
        up.destroy();
        sendStatus(res, 'Forbidden', masking);
        done({ status: 403, bytes: 0, error: masking });
        return;
      }
      const headers: Record<string, string | string[]> = {};
      for (const name of RESPONSE_HEADERS) {
        const v = answer.headers[name];
        if (v !== undefined) headers[name] = v;
      }
      // client-go follows a redirect with the caller's token whatever the host: only a path on the agent itself is passed on.
      if (typeof headers.location === 'string' && !SAME_HOST_LOCATION.test(headers.location)) delete headers.location;
      // A masked body's length differs from the API server's; without a length it is sent chunked.
      if (!masking && answer.headers['content-length'] !== undefined) headers['content-length'] = answer.headers['content-length'];
      // kubectl prints Warning headers (RFC 7234 299 warnings) to stderr: how the caller learns of the approval.
      if (notice) headers.warning = [...[headers.warning ?? []].flat(), `299 - ${JSON.stringify(notice)}`];
      res.writeHead(status, headers);
      // A stream (watch, logs -f) has no length: its headers go out now, even before its first event.
      // A sized body goes with its headers (a separate small write would wait on the client's delayed ACK).
      if (answer.headers['content-length'] === undefined) res.flushHeaders();
      const stages: (Readable | Transform)[] = [answer, ...(masking ? [masking] : [])];
      const last = stages[stages.length - 1] as Readable;
      last.on('data', (chunk: Buffer | string) => {
        sent += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
      });
      pipeline([...stages, res] as unknown as [Readable, ServerResponse], (e) => {
        if (e) res.destroy();
        done({ status, bytes: sent, error: e?.message });
      });
    });
    if (body === undefined) up.end();
    else if (Buffer.isBuffer(body)) up.end(body);
    else
      pipeline(body, up, (e) => {
        // An upstream failure is answered by the upstream error handler above (it ran first).
        if (!e || settled) return;
        up.destroy();
        if (e instanceof RequestTooLargeError) sendStatus(res, 'RequestEntityTooLarge', e.message);
        else res.destroy();
        done({ status: e instanceof RequestTooLargeError ? 413 : 400, bytes: sent, error: e.message });
      });
  });
}
