import { DeferredObserver } from '../../../agent/postgres/deferred-observer';
import type { PgSessionObserver, StatementEvent } from '../../../agent/postgres/events';

/** An observer that writes down what it is handed, in order (and what failed), behind a DeferredObserver. */
function listing(): { seen: string[]; observer: PgSessionObserver; deferred: DeferredObserver } {
  const seen: string[] = [];
  const observer: PgSessionObserver = {
    statement: (e) => seen.push(`statement ${e.text}`),
    dataRow: (buf, start, end) => seen.push(`row ${buf.toString('utf8', start, end)}`),
    cycleEnd: (e) => seen.push(`end ${e.commandTags.join(',')}`),
    serverMessage: (e) => seen.push(`${e.kind} ${e.fields.M}`),
    event: (e) => seen.push(e.e === 'approval' ? `approval ${e.outcome}` : `decision ${e.decision}`),
    end: (reason) => seen.push(`session end ${reason}`),
  };
  return { seen, observer, deferred: new DeferredObserver(observer, (e) => seen.push(`failed ${String(e)}`)) };
}

const statement = (text: string): StatementEvent => ({ text, protocol: 'simple', class: 'read', decision: 'allow', rule: undefined, reason: undefined });
const microtasks = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe("a session's events handed on after its bytes are written", () => {
  it('hands nothing on during the call that produced the events, everything in order once it returns', async () => {
    const { seen, deferred } = listing();
    const chunk = Buffer.from('xxab|cd');
    deferred.statement(statement('select 1'));
    deferred.dataRow(chunk, 2, 4);
    deferred.dataRow(chunk, 5, 7);
    deferred.serverMessage({ kind: 'notice', fields: { M: 'hello' } });
    deferred.cycleEnd({ endedAt: Date.now(), durationMs: 1, commandTags: ['SELECT 2'], rowsSent: 2, errors: [] });
    deferred.event({ e: 'approval', requestId: 'r', outcome: 'approved', reviewers: ['bob'] });
    expect(seen).toEqual([]);
    await microtasks();
    expect(seen).toEqual(['statement select 1', 'row ab', 'row cd', 'notice hello', 'end SELECT 2', 'approval approved']);
    deferred.statement(statement('select 2'));
    await microtasks();
    expect(seen.slice(6)).toEqual(['statement select 2']);
  });

  it('keeps held events (a socket handler writing) until they are released, not only until the call returns', async () => {
    const { seen, deferred } = listing();
    deferred.hold();
    deferred.statement(statement('select 1'));
    deferred.cycleEnd({ endedAt: Date.now(), durationMs: 1, commandTags: ['SELECT 1'], rowsSent: 1, errors: [] });
    await microtasks();
    expect(seen).toEqual([]);
    deferred.release();
    expect(seen).toEqual(['statement select 1', 'end SELECT 1']);
    deferred.event({ e: 'approval', requestId: 'r', outcome: 'denied', reviewers: ['bob'] });
    await microtasks();
    expect(seen.slice(2)).toEqual(['approval denied']);
  });

  it('ends the session at once, after what is still queued', () => {
    const { seen, deferred } = listing();
    deferred.statement(statement('select 1'));
    deferred.end('client terminated');
    expect(seen).toEqual(['statement select 1', 'session end client terminated']);
  });

  it('reports an observer that throws and hands on the events after it', async () => {
    const { seen, observer } = listing();
    const deferred = new DeferredObserver(
      {
        ...observer,
        statement: () => {
          throw new Error('boom');
        },
      },
      (e) => seen.push(`failed ${String(e)}`),
    );
    deferred.statement(statement('select 1'));
    deferred.cycleEnd({ endedAt: Date.now(), durationMs: 1, commandTags: ['SELECT 1'], rowsSent: 1, errors: [] });
    await microtasks();
    expect(seen).toEqual(['failed Error: boom', 'end SELECT 1']);
  });
});
