import { BACKEND } from '../protocol/codes';
import { MessageFramer } from '../protocol/framer';
import { bodyOf, readErrorFields } from '../protocol/reader';
import { queryMessage, terminateMessage } from '../protocol/writer';
import { connectUpstream, UpstreamError, type UpstreamOptions } from './connect';

const MAX_RESULT_MESSAGE_BYTES = 1024 * 1024;
const QUERY_TIMEOUT_MS = 10_000;

/**
 * Runs one statement on a fresh connection and returns its rows as text. For the agent's own small
 * checks (the read role's attributes); never for caller traffic.
 */
export async function querySimple(options: UpstreamOptions, sql: string): Promise<(string | null)[][]> {
  const conn = await connectUpstream(options);
  const { socket } = conn;
  return new Promise((resolve, reject) => {
    const rows: (string | null)[][] = [];
    const framer = new MessageFramer(MAX_RESULT_MESSAGE_BYTES);
    let error: UpstreamError | undefined;
    const done = (e?: Error): void => {
      clearTimeout(timer);
      socket.removeAllListeners('data');
      socket.end(terminateMessage());
      if (e) reject(e);
      else resolve(rows);
    };
    const timer = setTimeout(() => done(new UpstreamError('query timed out')), QUERY_TIMEOUT_MS);
    socket.on('data', (chunk: Buffer) => {
      const problem = framer.push(chunk, (buf, start, end, code) => {
        const r = bodyOf(buf, start, end);
        if (code === BACKEND.DataRow) {
          const n = r.int16();
          const row: (string | null)[] = [];
          for (let i = 0; i < n; i++) {
            const len = r.int32();
            row.push(len === -1 ? null : r.bytes(len).toString('utf8'));
          }
          rows.push(row);
        } else if (code === BACKEND.ErrorResponse) {
          const fields = readErrorFields(buf, start, end);
          error = new UpstreamError(fields.M ?? 'query failed', fields);
        } else if (code === BACKEND.ReadyForQuery) done(error);
      });
      if (problem) done(new UpstreamError(`invalid message from the database (${problem.kind})`));
    });
    socket.on('error', (e) => done(e));
    socket.write(queryMessage(sql));
  });
}
