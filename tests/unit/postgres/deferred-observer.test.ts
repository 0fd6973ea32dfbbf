import { DeferredObserver } from '../../../agent/postgres/deferred-observer';
import type { CycleEndEvent, PgSessionObserver, StatementEvent } from '../../../agent/postgres/events';

const statement: StatementEvent = { text: 'SELECT 1', protocol: 'simple', class: 'read', decision: 'allow', rule: undefined, reason: undefined };
const result: CycleEndEvent = { durationMs: 1, commandTags: ['SELECT 1'], rowsSent: 1, errors: [] };

/** What the observer behind the queue was told, in order. */
function recorder(): { seen: string[]; observer: PgSessionObserver } {
  const seen: string[] = [];
  return {
    seen,
    observer: {
      statement: (e) => seen.push(`statement ${e.text}`),
      dataRow: (buf, start, end) => seen.push(`row ${buf.subarray(start, end).toString()}`),
      cycleEnd: (e) => seen.push(`result ${e.commandTags.join(',')}`),
      serverMessage: (e) => seen.push(`${e.kind} ${e.fields.M}`),
      approval: (e) => seen.push(`approval ${e.outcome}`),
      sessionEnd: (reason) => seen.push(`end ${reason}`),
    },
  };
}

const microtasks = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('DeferredObserver', () => {
  it('hands on a transaction’s events only after the code that made them has returned, in order', async () => {
    const { seen, observer } = recorder();
    const deferred = new DeferredObserver(observer, (e) => {
      throw e;
    });
    const chunk = Buffer.from('xxrow-1row-2');
    deferred.statement(statement);
    deferred.dataRow(chunk, 2, 7);
    deferred.dataRow(chunk, 7, 12);
    deferred.cycleEnd(result);
    expect(seen).toEqual([]);
    await microtasks();
    expect(seen).toEqual(['statement SELECT 1', 'row row-1', 'row row-2', 'result SELECT 1']);
    deferred.statement(statement);
    await microtasks();
    expect(seen).toHaveLength(5);
  });

  it('passes the queued events before a notice, an approval or the session’s end', () => {
    const { seen, observer } = recorder();
    const deferred = new DeferredObserver(observer, () => undefined);
    deferred.statement(statement);
    deferred.serverMessage({ kind: 'notice', fields: { M: 'hello' } });
    deferred.cycleEnd(result);
    deferred.approval({ requestId: 'r1', outcome: 'approved', reviewers: ['bob'] });
    deferred.statement(statement);
    deferred.sessionEnd('client closed');
    expect(seen).toEqual(['statement SELECT 1', 'notice hello', 'result SELECT 1', 'approval approved', 'statement SELECT 1', 'end client closed']);
  });

  it('reports an observer that throws, and goes on with the next batch', async () => {
    const { seen, observer } = recorder();
    const errors: unknown[] = [];
    const broken = (): void => {
      throw new Error('broken');
    };
    const deferred = new DeferredObserver({ ...observer, cycleEnd: broken }, (e) => errors.push(e));
    deferred.statement(statement);
    deferred.cycleEnd(result);
    await microtasks();
    expect(errors).toHaveLength(1);
    deferred.statement(statement);
    await microtasks();
    expect(seen).toEqual(['statement SELECT 1', 'statement SELECT 1']);
  });
});
