import { BACKEND } from '../protocol/codes';
import { MessageFramer } from '../protocol/framer';
import { bodyOf, readErrorFields } from '../protocol/reader';
import { FRONTEND } from '../protocol/codes';
import { cstring, message, terminateMessage } from '../protocol/writer';
import { connectUpstream, type UpstreamOptions } from '../upstream/connect';
import { approvedMessages, type ApprovedStatement } from './approved-request';

/** Rewrites one result message for the caller: new bytes, null to drop it, undefined to pass it. */
export type ResultTransform = (buf: Buffer, start: number, end: number, code: number) => Buffer | null | undefined;

export interface ResultSink {
  /** Writes to the caller; false asks the writer to wait for `drain`. */
  write(bytes: Buffer): boolean;
  onDrain(resume: () => void): void;
  /** Masking, when the caller's results are masked. */
  readonly transform?: ResultTransform | undefined;
  /** Each message as written to the caller (after masking): for the session's recording. */
  readonly sent?: ((bytes: Buffer, code: number) => void) | undefined;
}

export interface RunOutcome {
  readonly errors: readonly string[];
  readonly commandTags: readonly string[];
  /** DataRows sent to the caller. */
  readonly rows: number;
}

/** Sent when an approved statement asks for COPY FROM STDIN: nothing from the caller reaches the write connection. */
export const COPY_IN_REFUSED = 'twokey: COPY FROM STDIN cannot run on the write credential (the rows were not reviewed); use INSERT, or twokey exec';

/**
 * Runs the approved statement once, on a fresh connection with the write credential, as messages the
 * agent builds from it (see `approvedMessages`), and streams the results to the caller. The database's
 * own ReadyForQuery and ParameterStatus stay here: the caller's session is the read connection, whose
 * state the caller's ReadyForQuery reports.
 */
export async function runOnWriteConnection(options: UpstreamOptions, statement: ApprovedStatement, sink: ResultSink, maxMessageBytes: number): Promise<RunOutcome> {
  const conn = await connectUpstream(options);
  const { socket } = conn;
  return new Promise<RunOutcome>((resolve, reject) => {
    const framer = new MessageFramer(maxMessageBytes);
    const errors: string[] = [];
    const tags: string[] = [];
    let rows = 0;
    let settled = false;
    const finish = (e?: Error): void => {
      if (settled) return;
      settled = true;
      socket.removeAllListeners('data');
      socket.end(terminateMessage());
      if (e) reject(e);
      else resolve({ errors, commandTags: tags, rows });
    };
    socket.on('data', (chunk: Buffer) => {
      const problem = framer.push(chunk, (buf, start, end, code) => {
        if (code === BACKEND.ReadyForQuery) return finish();
        if (code === BACKEND.ParameterStatus) return;
        // The caller's CopyData would be bytes no reviewer saw: the server is told the copy failed instead.
        if (code === BACKEND.CopyInResponse) return void socket.write(message(FRONTEND.CopyFail, cstring(COPY_IN_REFUSED)));
        if (code === BACKEND.ErrorResponse) errors.push(readErrorFields(buf, start, end).M ?? 'error');
        if (code === BACKEND.CommandComplete) tags.push(bodyOf(buf, start, end).cstring());
        const replaced = sink.transform?.(buf, start, end, code);
        if (replaced === null) return;
        const bytes = replaced ?? Buffer.from(buf.subarray(start, end));
        // Masking may have replaced a message with another (an error): what was sent is what counts.
        if (bytes[0] === BACKEND.DataRow) rows++;
        sink.sent?.(bytes, bytes[0] as number);
        if (!sink.write(bytes)) {
          socket.pause();
          sink.onDrain(() => socket.resume());
        }
      });
      if (problem) finish(new Error(`the database sent an invalid message (${problem.kind})`));
    });
    socket.on('error', (e) => finish(e));
    socket.on('close', () => finish(new Error('the database closed the write connection')));
    socket.write(approvedMessages(statement));
  });
}
