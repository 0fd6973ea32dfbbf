import { KnownConnections } from '../../../lambdas/store/known-connections';
import type { ConnectionRecord, ConnectionStore } from '../../../lambdas/store/stores';

/** The table behind the cache, counting its reads. */
function table() {
  const rows = new Map<string, ConnectionRecord>();
  let reads = 0;
  const store: ConnectionStore = {
    put: async (r) => void rows.set(r.connectionId, r),
    get: async (id) => (reads++, rows.get(id)),
    delete: async (id) => void rows.delete(id),
    list: async () => [...rows.values()],
    listForAgent: async (agent) => [...rows.values()].filter((r) => r.agent === agent),
  };
  return { rows, store, reads: () => reads };
}

const record = (connectionId: string, agent = 'edge-1'): ConnectionRecord => ({ connectionId, agent, connectedAt: '2026-11-28T00:00:00.000Z' });

describe('known connections', () => {
  it('reads a connection from the table once, then answers from memory', async () => {
    const t = table();
    t.rows.set('c1', record('c1'));
    const known = new KnownConnections(t.store);
    expect(await known.get('c1')).toEqual(record('c1'));
    expect(await known.get('c1')).toEqual(record('c1'));
    expect(t.reads()).toBe(1);
  });

  it('never keeps a miss, and forgets what it deletes', async () => {
    const t = table();
    const known = new KnownConnections(t.store);
    expect(await known.get('c2')).toBeUndefined();
    await known.put(record('c2'));
    expect(await known.get('c2')).toEqual(record('c2'));
    expect(t.reads()).toBe(1);
    await known.delete('c2');
    expect(await known.get('c2')).toBeUndefined();
    expect(t.reads()).toBe(2);
  });

  it('keeps at most its bound, forgetting the oldest first', async () => {
    const t = table();
    const known = new KnownConnections(t.store, 2);
    for (const id of ['a', 'b', 'c']) await known.put(record(id));
    await known.get('c');
    await known.get('b');
    expect(t.reads()).toBe(0);
    await known.get('a');
    expect(t.reads()).toBe(1);
  });
});
