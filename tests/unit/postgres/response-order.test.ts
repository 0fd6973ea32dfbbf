import { MessageFramer } from '../../../agent/postgres/protocol/framer';
import { cstring, errorResponse, message, readyForQuery } from '../../../agent/postgres/protocol/writer';
import { ResponseOrder } from '../../../agent/postgres/response-order';

const Z = 0x5a;
const row = (v: string) => message(0x44, Buffer.concat([Buffer.from([0, 1, 0, 0, 0, v.length]), Buffer.from(v)]));
const complete = (tag: string) => message(0x43, cstring(tag));
const parseComplete = () => message(0x31);
const refusal = (text: string) => errorResponse({ severity: 'ERROR', code: '42501', message: text });

/**
 * The session's side of the database stream, reduced to ordering: each message goes to the client,
 * and at a ReadyForQuery what was made here goes around it. `chunks` is the database's bytes, split
 * anywhere, as TCP delivers them.
 */
function clientSees(order: ResponseOrder, written: Buffer[], chunks: Buffer[]): string {
  const out = [...written];
  const framer = new MessageFramer(1024);
  for (const chunk of chunks) {
    framer.push(chunk, (buf, start, end, code) => {
      const msg = buf.subarray(start, end);
      if (code !== Z) return void out.push(msg);
      const cycle = order.ready();
      out.push(...(cycle?.before ?? []), msg, ...(cycle?.after ?? []));
    });
  }
  return Buffer.concat(out).toString('hex');
}

/** A session: a Query forwarded, a Query refused here, then a batch whose Bind is refused (Parse and Sync forwarded). */
function session(): { order: ResponseOrder; written: Buffer[] } {
  const order = new ResponseOrder();
  const written: Buffer[] = [];
  const now = (b: Buffer | undefined) => b && written.push(b);
  order.query();
  now(order.refuseCycle([refusal('refused query')], 'I'));
  order.inBatch();
  now(order.refuseInBatch(refusal('refused bind')));
  expect(order.skippingToSync).toBe(true);
  const sync = order.sync('I');
  expect(sync).toEqual({ forward: true });
  return { order, written };
}

const server = Buffer.concat([row('a'), complete('SELECT 1'), readyForQuery('I'), parseComplete(), readyForQuery('I')]);
const expected = Buffer.concat([row('a'), complete('SELECT 1'), readyForQuery('I'), refusal('refused query'), readyForQuery('I'), parseComplete(), refusal('refused bind'), readyForQuery('I')]).toString('hex');

describe('response ordering', () => {
  it('puts answers made here where the database would have: a refused Query after the cycle before it, a refused batch message before its ReadyForQuery', () => {
    const { order, written } = session();
    expect(clientSees(order, written, [server])).toBe(expected);
  });

  it('keeps that order at every split point of the database stream', () => {
    for (let i = 1; i < server.length; i++) {
      const { order, written } = session();
      expect(clientSees(order, written, [server.subarray(0, i), server.subarray(i)])).toBe(expected);
    }
  });

  it('keeps that order at every pair of split points and one byte at a time', () => {
    for (let i = 1; i < server.length; i += 2) {
      for (let j = i + 1; j < server.length; j += 3) {
        const { order, written } = session();
        expect(clientSees(order, written, [server.subarray(0, i), server.subarray(i, j), server.subarray(j)])).toBe(expected);
      }
    }
    const { order, written } = session();
    expect(clientSees(order, written, [...server].map((b) => Buffer.from([b])))).toBe(expected);
  });

  it('answers at once when nothing is owed, and a skipped batch that reached nothing gets its ReadyForQuery here', () => {
    const order = new ResponseOrder();
    expect(order.refuseCycle([], 'T')?.toString('hex')).toBe(readyForQuery('T').toString('hex'));
    expect(order.refuseInBatch(refusal('no'))?.toString('hex')).toBe(refusal('no').toString('hex'));
    const sync = order.sync('I');
    expect(sync.forward).toBe(false);
    expect(!sync.forward && sync.now?.toString('hex')).toBe(readyForQuery('I').toString('hex'));
    expect(order.pending).toHaveLength(0);
  });

  it('tells when nothing more is owed', async () => {
    const order = new ResponseOrder();
    order.query();
    order.inBatch();
    order.sync('I');
    let idle = false;
    const waiting = order.idle().then(() => (idle = true));
    order.ready();
    await Promise.resolve();
    expect(idle).toBe(false);
    order.ready();
    await waiting;
    expect(idle).toBe(true);
  });
});
