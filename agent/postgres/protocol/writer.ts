import { BACKEND, FRONTEND, type TransactionStatus } from './codes';

/**
 * Builds protocol messages into buffers. Sizes are computed first, so each message is one allocation.
 */
export function message(code: number, body: Buffer | string = Buffer.alloc(0)): Buffer {
  const payload = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const out = Buffer.allocUnsafe(5 + payload.length);
  out[0] = code;
  out.writeInt32BE(4 + payload.length, 1);
  payload.copy(out, 5);
  return out;
}

export const cstring = (s: string): Buffer => Buffer.from(`${s}\0`, 'utf8');

export function int32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeInt32BE(n, 0);
  return b;
}

export interface ErrorFields {
  readonly severity: 'ERROR' | 'FATAL' | 'NOTICE' | 'WARNING' | 'INFO';
  readonly code: string;
  readonly message: string;
  readonly detail?: string;
  readonly hint?: string;
}

function fields(f: ErrorFields): Buffer {
  const parts: Buffer[] = [
    Buffer.from('S'), cstring(f.severity),
    Buffer.from('V'), cstring(f.severity),
    Buffer.from('C'), cstring(f.code),
    Buffer.from('M'), cstring(f.message),
  ];
  if (f.detail) parts.push(Buffer.from('D'), cstring(f.detail));
  if (f.hint) parts.push(Buffer.from('H'), cstring(f.hint));
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

export const errorResponse = (f: ErrorFields): Buffer => message(BACKEND.ErrorResponse, fields(f));
export const noticeResponse = (f: Omit<ErrorFields, 'severity'> & { severity?: ErrorFields['severity'] }): Buffer =>
  message(BACKEND.NoticeResponse, fields({ severity: 'NOTICE', ...f }));
export const readyForQuery = (status: TransactionStatus): Buffer => message(BACKEND.ReadyForQuery, status);
export const authenticationRequest = (kind: number): Buffer => message(BACKEND.Authentication, int32(kind));
export const parameterStatus = (name: string, value: string): Buffer =>
  message(BACKEND.ParameterStatus, Buffer.concat([cstring(name), cstring(value)]));
export const backendKeyData = (pid: number, secret: number): Buffer =>
  message(BACKEND.BackendKeyData, Buffer.concat([int32(pid), int32(secret)]));
export const commandComplete = (tag: string): Buffer => message(BACKEND.CommandComplete, cstring(tag));

/** StartupMessage (protocol 3.0) with its parameters. */
export function startupMessage(params: Record<string, string>): Buffer {
  const body = Buffer.concat([
    int32(196608),
    ...Object.entries(params).flatMap(([k, v]) => [cstring(k), cstring(v)]),
    Buffer.from([0]),
  ]);
  return Buffer.concat([int32(body.length + 4), body]);
}

export function cancelRequest(pid: number, secret: number): Buffer {
  return Buffer.concat([int32(16), int32(80877102), int32(pid), int32(secret)]);
}

export const passwordMessage = (password: string): Buffer => message(FRONTEND.Password, cstring(password));
export const queryMessage = (sql: string): Buffer => message(FRONTEND.Query, cstring(sql));
export const terminateMessage = (): Buffer => message(FRONTEND.Terminate);

export function saslInitialResponse(mechanism: string, data: Buffer): Buffer {
  return message(FRONTEND.Password, Buffer.concat([cstring(mechanism), int32(data.length), data]));
}
export const saslResponse = (data: Buffer): Buffer => message(FRONTEND.Password, data);
