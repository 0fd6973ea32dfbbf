import { connect, type Socket } from 'node:net';
import { MessageFramer } from '../../agent/postgres/protocol/framer';
import { cstring, int32, message, passwordMessage, startupMessage } from '../../agent/postgres/protocol/writer';

export interface WireMessage {
  readonly code: string;
  readonly body: Buffer;
}

/** A bare protocol client for tests that need exact bytes: pipelining, malformed and oversized messages. */
export class WireClient {
  readonly received: WireMessage[] = [];
  closed = false;
  private readonly framer = new MessageFramer(64 * 1024 * 1024);
  private waiters: (() => void)[] = [];

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.framer.push(chunk, (buf, start, end, code) => {
        this.received.push({ code: String.fromCharCode(code), body: Buffer.from(buf.subarray(start + 5, end)) });
      });
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  static async open(host: string, port: number): Promise<WireClient> {
    const socket = connect(port, host);
    await new Promise((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new WireClient(socket);
  }

  /** Start-up and cleartext password (the token), until the first ReadyForQuery. */
  static async login(host: string, port: number, token: string, params: Record<string, string> = {}): Promise<WireClient> {
    const c = await WireClient.open(host, port);
    c.socket.write(startupMessage({ user: 'tester', database: 'demo', ...params }));
    await c.until((m) => m.code === 'R');
    c.socket.write(passwordMessage(token));
    await c.until((m) => m.code === 'Z' || m.code === 'E');
    return c;
  }

  write(...buffers: Buffer[]): void {
    this.socket.write(Buffer.concat(buffers));
  }

  /** Waits until a received message (from `from` on) satisfies `predicate`; returns the messages since `from`. */
  until(predicate: (m: WireMessage) => boolean, from = 0, timeoutMs = 10_000): Promise<WireMessage[]> {
    return this.untilSlice((slice) => slice.some(predicate), from, timeoutMs);
  }

  async untilSlice(done: (slice: WireMessage[]) => boolean, from = 0, timeoutMs = 10_000): Promise<WireMessage[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const slice = this.received.slice(from);
      if (done(slice)) return slice;
      if (this.closed) return slice;
      if (Date.now() > deadline) throw new Error(`timed out; got ${slice.map((m) => m.code).join('')}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }

  /** Waits for the n-th ReadyForQuery counted from `from`. */
  readyCount(n: number, from = 0): Promise<WireMessage[]> {
    return this.untilSlice((slice) => slice.filter((m) => m.code === 'Z').length >= n, from);
  }

  close(): void {
    this.socket.destroy();
  }
}

export const errorMessageOf = (m: WireMessage): Record<string, string> => {
  const fields: Record<string, string> = {};
  let i = 0;
  while (i < m.body.length && m.body[i] !== 0) {
    const key = String.fromCharCode(m.body[i] as number);
    const end = m.body.indexOf(0, i + 1);
    fields[key] = m.body.toString('utf8', i + 1, end);
    i = end + 1;
  }
  return fields;
};

const int16 = (n: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
};

/** Bind with parameters (text unless `paramFormats` says otherwise) and result format codes. */
function bindWith(portal: string, statement: string, params: readonly (string | Buffer | null)[], options: { paramFormats?: number[]; resultFormats?: number[] } = {}): Buffer {
  const formats = options.paramFormats ?? [];
  const results = options.resultFormats ?? [];
  const values = params.map((p) => (p === null ? int32(-1) : Buffer.concat([int32(Buffer.byteLength(p)), Buffer.from(p)])));
  return message(0x42, Buffer.concat([cstring(portal), cstring(statement), int16(formats.length), ...formats.map(int16), int16(params.length), ...values, int16(results.length), ...results.map(int16)]));
}

export const wire = {
  query: (sql: string) => message(0x51, cstring(sql)),
  parse: (name: string, sql: string, types: number[] = []) => message(0x50, Buffer.concat([cstring(name), cstring(sql), int16(types.length), ...types.map(int32)])),
  bind: (portal: string, statement: string) => bindWith(portal, statement, []),
  bindWith,
  describePortal: (portal: string) => message(0x44, Buffer.concat([Buffer.from('P'), cstring(portal)])),
  describeStatement: (name: string) => message(0x44, Buffer.concat([Buffer.from('S'), cstring(name)])),
  execute: (portal: string, maxRows = 0) => message(0x45, Buffer.concat([cstring(portal), int32(maxRows)])),
  flush: () => message(0x48),
  closeStatement: (name: string) => message(0x43, Buffer.concat([Buffer.from('S'), cstring(name)])),
  sync: () => message(0x53),
  terminate: () => message(0x58),
  functionCall: () => message(0x46, Buffer.concat([int32(1234), Buffer.from([0, 0, 0, 0, 0, 0])])),
};
