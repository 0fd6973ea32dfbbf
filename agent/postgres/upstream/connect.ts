import { connect as tcpConnect, type Socket } from 'node:net';
import { AUTH, BACKEND, type TransactionStatus } from '../protocol/codes';
import { MessageFramer } from '../protocol/framer';
import { bodyOf, readErrorFields } from '../protocol/reader';
import { passwordMessage, saslInitialResponse, saslResponse, startupMessage } from '../protocol/writer';
import type { ReadBuffers } from './read-buffers';
import { md5PasswordResponse, SCRAM_MECHANISM, ScramClient } from './scram';

export const UPSTREAM_CONNECT_TIMEOUT_MS = 10_000;
/** Messages during start-up are small; anything larger is not a sane server. */
const MAX_STARTUP_MESSAGE_BYTES = 64 * 1024;

export interface UpstreamOptions {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string | undefined;
  readonly database: string;
  /** Extra start-up parameters (application_name, DateStyle, ...), already filtered by the caller. */
  readonly params?: Record<string, string>;
  readonly timeoutMs?: number;
}

export interface UpstreamConnection {
  readonly socket: Socket;
  readonly parameters: ReadonlyMap<string, string>;
  readonly backendKey: { readonly pid: number; readonly secret: number };
  readonly transactionStatus: TransactionStatus;
}

export class UpstreamError extends Error {
  override name = 'UpstreamError';
  constructor(
    message: string,
    /** The server's ErrorResponse fields, when it sent one. */
    readonly fields?: Record<string, string>,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * Opens an authenticated connection to PostgreSQL: start-up, then whichever of trust, cleartext, md5
 * or SCRAM-SHA-256 the server asks for; returns once the server is ready for a query. With `reads`,
 * the socket reads into its reused buffers and emits each read as a 'data' event as usual.
 */
export function connectUpstream(options: UpstreamOptions, reads?: ReadBuffers): Promise<UpstreamConnection> {
  return new Promise((resolve, reject) => {
    const socket: Socket = reads
      ? tcpConnect({
          host: options.host,
          port: options.port,
          onread: {
            buffer: reads.next,
            // Reading goes on (true); the session pauses the socket itself under backpressure.
            callback: (bytes, buf) => {
              reads.read(buf, bytes, (chunk) => socket.emit('data', chunk));
              return true;
            },
          },
        })
      : tcpConnect({ host: options.host, port: options.port });
    socket.setNoDelay(true);
    const framer = new MessageFramer(MAX_STARTUP_MESSAGE_BYTES);
    const parameters = new Map<string, string>();
    let backendKey = { pid: 0, secret: 0 };
    let scram: ScramClient | undefined;
    let settled = false;

    const fail = (error: UpstreamError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    const timer = setTimeout(() => fail(new UpstreamError('timed out connecting to the database')), options.timeoutMs ?? UPSTREAM_CONNECT_TIMEOUT_MS);
    const needPassword = (): string => {
      if (options.password === undefined) throw new UpstreamError('the database asks for a password and none is configured');
      return options.password;
    };

    const onMessage = (buf: Buffer, start: number, end: number, code: number): void => {
      const r = bodyOf(buf, start, end);
      switch (code) {
        case BACKEND.Authentication: {
          const kind = r.int32();
          if (kind === AUTH.Ok) return;
          if (kind === AUTH.CleartextPassword) socket.write(passwordMessage(needPassword()));
          else if (kind === AUTH.MD5Password) socket.write(passwordMessage(md5PasswordResponse(options.user, needPassword(), r.bytes(4))));
          else if (kind === AUTH.SASL) {
            const mechanisms: string[] = [];
            for (let m = r.cstring(); m !== ''; m = r.cstring()) mechanisms.push(m);
            if (!mechanisms.includes(SCRAM_MECHANISM)) throw new UpstreamError(`no supported SASL mechanism in ${mechanisms.join(', ')}`);
            scram = new ScramClient(needPassword());
            socket.write(saslInitialResponse(SCRAM_MECHANISM, scram.clientFirst()));
          } else if (kind === AUTH.SASLContinue) {
            if (!scram) throw new UpstreamError('SASL continue without SASL start');
            socket.write(saslResponse(scram.clientFinal(r.rest().toString('utf8'))));
          } else if (kind === AUTH.SASLFinal) {
            if (!scram) throw new UpstreamError('SASL final without SASL start');
            scram.verifyServerFinal(r.rest().toString('utf8'));
          } else throw new UpstreamError(`unsupported authentication method ${kind}`);
          return;
        }
        case BACKEND.ParameterStatus:
          parameters.set(r.cstring(), r.cstring());
          return;
        case BACKEND.BackendKeyData:
          backendKey = { pid: r.int32(), secret: r.int32() };
          return;
        case BACKEND.ErrorResponse: {
          const fields = readErrorFields(buf, start, end);
          throw new UpstreamError(fields.M ?? 'the database refused the connection', fields);
        }
        case BACKEND.ReadyForQuery: {
          settled = true;
          clearTimeout(timer);
          socket.off('data', onData);
          socket.off('error', onError);
          socket.off('close', onClose);
          resolve({ socket, parameters, backendKey, transactionStatus: String.fromCharCode(r.byte()) as TransactionStatus });
          return;
        }
        default:
          // NoticeResponse and NegotiateProtocolVersion during start-up carry nothing we act on.
          return;
      }
    };
    const onData = (chunk: Buffer): void => {
      try {
        const problem = framer.push(chunk, onMessage);
        if (problem) fail(new UpstreamError(`invalid message from the database during start-up (${problem.kind})`));
      } catch (e) {
        fail(e instanceof UpstreamError ? e : new UpstreamError(e instanceof Error ? e.message : String(e), undefined, { cause: e }));
      }
    };
    const onError = (e: Error): void => fail(new UpstreamError(`cannot reach the database: ${e.message}`, undefined, { cause: e }));
    const onClose = (): void => fail(new UpstreamError('the database closed the connection during start-up'));
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.once('connect', () =>
      // The classifier reads statements as UTF-8, so the session's encoding is pinned to it.
      socket.write(startupMessage({ ...options.params, user: options.user, database: options.database, client_encoding: 'UTF8' })),
    );
  });
}
