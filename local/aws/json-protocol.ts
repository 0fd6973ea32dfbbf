import type { IncomingMessage, ServerResponse } from 'node:http';

const MAX_AWS_REQUEST_BYTES = 1024 * 1024;

/** Reads a JSON request body (AWS JSON and REST-JSON protocols), bounded. */
export async function readJsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_AWS_REQUEST_BYTES) throw new AwsApiError(413, 'RequestEntityTooLarge', 'request too large');
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? (JSON.parse(text) as Record<string, unknown>) : {};
}

export class AwsApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
    this.name = type;
  }
}

/** Error shape the SDK's JSON protocols parse: `__type` in the body and `x-amzn-errortype`. */
export function sendAwsError(res: ServerResponse, e: unknown): void {
  const error = e instanceof AwsApiError ? e : new AwsApiError(500, 'InternalFailure', 'internal error');
  res.writeHead(error.status, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-errortype': error.type });
  res.end(JSON.stringify({ __type: error.type, message: error.message }));
}

export function sendAwsJson(res: ServerResponse, body: unknown, contentType = 'application/x-amz-json-1.0'): void {
  res.writeHead(200, { 'content-type': contentType });
  res.end(JSON.stringify(body));
}

/** `X-Amz-Target: Service.Operation` -> `Operation`. */
export function operationOf(req: IncomingMessage): string {
  const target = String(req.headers['x-amz-target'] ?? '');
  return target.slice(target.lastIndexOf('.') + 1);
}
