import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FOLDED_ROWS_MAX, pgRecorder, RING_BYTES } from '../../../agent/recording/pg-recorder';
import type { CycleEndEvent, PgSessionEvents, PgSessionObserver, StatementEvent } from '../../../agent/postgres/events';
import { readMeta, recoverSession, sealedChunks, SPOOL_FLUSH_MS } from '../../../agent/recording/spool';
import { RecordingService } from '../../../agent/recording/recording-service';
import type { TunnelClient } from '../../../agent/tunnel/tunnel-client';
import { decodeChunk } from '../../../core/recording/chunk';

const offline = { connected: false, onMessage: () => undefined, onConnected: () => undefined, send: () => ({ ok: false, error: new Error('offline') }) } as unknown as TunnelClient;
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const identity = { subject: 'bob', name: 'bob', email: 'bob@example.com', groups: ['dba'], issuer: 'test' };
const nextRound = (): Promise<void> => new Promise((r) => setImmediate(r));
/** bob's psql session starting on `recorder` (undefined when recording is off). */
const psqlSession = (recorder: PgSessionEvents, sessionId: string) =>
  recorder.sessionStart({ sessionId, target: 'demo-pg', identity, startupUser: 'bob', database: 'demo', applicationName: 'psql', clientAddress: '127.0.0.1:7', at: new Date() });

/** A DataRow message (header included) with text values; null is SQL NULL. */
function dataRow(values: (string | null)[]): Buffer {
  const parts = values.map((v) => {
    if (v === null) return Buffer.from([0xff, 0xff, 0xff, 0xff]);
    const bytes = Buffer.from(v, 'utf8');
    const len = Buffer.alloc(4);
    len.writeInt32BE(bytes.length);
    return Buffer.concat([len, bytes]);
  });
  const body = Buffer.concat([Buffer.from([0, values.length]), ...parts]);
  const header = Buffer.alloc(5);
  header[0] = 0x44;
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

/** How long a test waits for the recorder's worker to have written a session's end. */
const END_WAIT_MS = 5_000;

/** The session's recorded events, once its end reached the spool (the recorder's worker writes the lines). */
async function events(dir: string): Promise<Record<string, unknown>[]> {
  const deadline = Date.now() + END_WAIT_MS;
  while (!readMeta(dir)?.ended && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  return sealedChunks(dir).flatMap((c, i) => {
    const decoded = decodeChunk(readFileSync(c.file), i);
    if (!decoded.ok) throw new Error(decoded.error.reason);
    return decoded.value.body
      .toString('utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  });
}

/** Every service a test makes, stopped after it (with the recorder's worker thread). */
const services: RecordingService[] = [];
function service_(root: string): RecordingService {
  const service = new RecordingService(root, offline, quiet);
  services.push(service);
  return service;
}

describe('Postgres recorder', () => {
  afterEach(() => {
    for (const s of services.splice(0)) s.stop();
  });

  it('records statements, rows as sent (up to the cap), results, notices and the end, in order', async () => {
    const testStarted = Date.now();
    const root = mkdtempSync(join(tmpdir(), 'tk-pgrec-'));
    const service = service_(root);
    const sessionId = '33333333-3333-4333-8333-333333333333';
    const recorder = pgRecorder(service, 'demo-pg', () => ({ mode: 'best-effort', maxRowsPerStatement: 2 }));
    const session = recorder.sessionStart({ sessionId, target: 'demo-pg', identity, startupUser: 'bob', database: 'demo', applicationName: 'psql', clientAddress: '127.0.0.1:5', at: new Date() });
    if (!session) throw new Error('recording is on');
    session.statement({ text: "SELECT name, note FROM t WHERE name = 'é\"\\'", protocol: 'simple', class: 'read', decision: 'allow', rule: 'r1', reason: undefined });
    // The row bytes sit inside a larger buffer, as they do in a socket chunk.
    const rows = [dataRow(['Zoë "Z"', null]), dataRow(['line\nbreak', 'tab\t']), dataRow(['over', 'the cap'])];
    const chunk = Buffer.concat([Buffer.from('xx'), ...rows]);
    let at = 2;
    for (const r of rows) {
      session.dataRow(chunk, at, at + r.length);
      at += r.length;
    }
    session.cycleEnd({ endedAt: Date.now(), durationMs: 3, commandTags: ['SELECT 3'], rowsSent: 3, errors: [] });
    session.statement({ text: 'SELECT 1/0', protocol: 'extended', class: 'read', decision: 'allow', rule: 'r1', reason: 'x' });
    // A notice in the middle of a cycle: order is kept.
    session.serverMessage({ kind: 'error', fields: { C: '22012', M: 'division by zero' } });
    // The result's time is when the cycle ended, not when the recorder was handed it.
    const endedAt = testStarted;
    session.cycleEnd({ endedAt, durationMs: 1, commandTags: [], rowsSent: 0, errors: ['division by zero'] });
    await nextRound();
    session.end('client closed');
    const dir = join(root, sessionId);
    const raw = await events(dir);
    expect(raw.find((e) => e.e === 'result')?.t).toBe(new Date(endedAt).toISOString());
    const recorded = raw.map(({ t, ...rest }) => {
      if (rest.e !== 'row') {
        // ISO 8601 as toISOString writes it, within the test's time.
        expect(t).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
        expect(new Date(t as string).toISOString()).toBe(t);
        expect(Date.parse(t as string)).toBeGreaterThanOrEqual(testStarted);
        expect(Date.parse(t as string)).toBeLessThanOrEqual(Date.now());
      }
      return rest;
    });
    expect(recorded).toEqual([
      expect.objectContaining({ e: 'session.start', sessionId, target: 'demo-pg', application: 'psql', client: '127.0.0.1:5', startupUser: 'bob', identity: expect.objectContaining({ subject: 'bob', issuer: 'test' }) }),
      // Rows and result with nothing in between: folded into the statement's line.
      {
        e: 'statement',
        text: "SELECT name, note FROM t WHERE name = 'é\"\\'",
        protocol: 'simple',
        class: 'read',
        decision: 'allow',
        rule: 'r1',
        v: [
          ['Zoë "Z"', null],
          ['line\nbreak', 'tab\t'],
        ],
        result: { tags: ['SELECT 3'], rows: 3, rowsNotRecorded: 1, durationMs: 3 },
      },
      // A notice in between: the events as they came.
      { e: 'statement', text: 'SELECT 1/0', protocol: 'extended', class: 'read', decision: 'allow', rule: 'r1', reason: 'x' },
      { e: 'error', code: '22012', message: 'division by zero' },
      { e: 'result', tags: [], rows: 0, durationMs: 1, errors: ['division by zero'] },
      { e: 'session.end', reason: 'client closed' },
    ]);
    expect(readMeta(dir)?.ended?.complete).toBe(true);
  });

  it('writes a burst of rows and smaller transactions after it once each, in order', async () => {
    const root = mkdtempSync(join(tmpdir(), 'tk-pgrec-'));
    const service = service_(root);
    const sessionId = '33333333-3333-4333-8333-333333333334';
    const burst = 1500;
    const recorder = pgRecorder(service, 'demo-pg', () => ({ mode: 'best-effort', maxRowsPerStatement: burst }));
    const session = psqlSession(recorder, sessionId);
    if (!session) throw new Error('recording is on');
    const transaction = (text: string, values: string[]) => {
      session.statement({ text, protocol: 'simple', class: 'read', decision: 'allow', rule: 'r1', reason: undefined });
      for (const v of values) {
        const row = dataRow([v]);
        session.dataRow(row, 0, row.length);
      }
      session.cycleEnd({ endedAt: Date.now(), durationMs: 0, commandTags: [`SELECT ${values.length}`], rowsSent: values.length, errors: [] });
    };
    // More rows than fold into a line, then fewer, then none.
    transaction('SELECT big', Array.from({ length: burst }, (_, i) => String(i)));
    await nextRound();
    transaction('SELECT two', ['a', 'b']);
    await nextRound();
    transaction('SELECT none', []);
    await nextRound();
    session.end('client closed');
    const recorded = await events(join(root, sessionId));
    const statements = recorded.filter((e) => e.e === 'statement').map((e) => e.text);
    expect(statements).toEqual(['SELECT big', 'SELECT two', 'SELECT none']);
    const big = recorded.find((e) => e.text === 'SELECT big');
    const rowValues = [...((big?.v as string[][]) ?? []), ...recorded.filter((e) => e.e === 'row').map((e) => e.v as string[])].map((v) => v[0]);
    expect(rowValues).toEqual(Array.from({ length: burst }, (_, i) => String(i)));
    const results = recorded.flatMap((e) => (e.e === 'result' ? [e.tags] : e.result ? [(e.result as { tags: string[] }).tags] : []));
    expect(results).toEqual([['SELECT 1500'], ['SELECT 2'], ['SELECT 0']]);
    expect(recorded.filter((e) => e.text === 'SELECT two')).toEqual([expect.objectContaining({ v: [['a'], ['b']], result: { tags: ['SELECT 2'], rows: 2, durationMs: 0 } })]);
  });

  it('keeps an event larger than the ring takes in its place among the others', async () => {
    const root = mkdtempSync(join(tmpdir(), 'tk-pgrec-'));
    const service = service_(root);
    const sessionId = '33333333-3333-4333-8333-333333333335';
    const session = psqlSession(pgRecorder(service, 'demo-pg', () => ({ mode: 'best-effort', maxRowsPerStatement: 10 })), sessionId);
    if (!session) throw new Error('recording is on');
    // A statement's reservation is 3 bytes a character: this one is over a quarter of the ring.
    const huge = `SELECT '${'z'.repeat(RING_BYTES / 8)}'`;
    const select = (text: string): StatementEvent => ({ text, protocol: 'simple', class: 'read', decision: 'allow', rule: undefined, reason: undefined });
    session.statement(select('SELECT 1'));
    session.statement(select(huge));
    const row = dataRow(['after']);
    session.dataRow(row, 0, row.length);
    // A row over a quarter of the ring: its bytes run to its record's end, which must be kept exactly.
    const wide = 'w'.repeat(RING_BYTES / 3);
    const wideRow = dataRow([wide, 'last']);
    session.dataRow(wideRow, 0, wideRow.length);
    session.cycleEnd({ endedAt: Date.now(), durationMs: 0, commandTags: ['SELECT 1', 'SELECT 2'], rowsSent: 2, errors: [] });
    session.end('client closed');
    const recorded = await events(join(root, sessionId));
    expect(recorded.map((e) => (e.text === huge ? 'huge' : (e.text ?? e.e)))).toEqual(['session.start', 'SELECT 1', 'huge', 'row', 'row', 'result', 'session.end']);
    expect(recorded.filter((e) => e.e === 'row').map((e) => e.v)).toEqual([['after'], [wide, 'last']]);
    service.stop();
  });

  it('records nothing when the policy turns recording off', () => {
    const root = mkdtempSync(join(tmpdir(), 'tk-pgrec-'));
    const recorder = pgRecorder(service_(root), 'demo-pg', () => ({ mode: 'off', maxRowsPerStatement: 10 }));
    expect(recorder.sessionStart({ sessionId: '44444444-4444-4444-8444-444444444444', target: 'demo-pg', identity, startupUser: undefined, database: 'demo', applicationName: undefined, clientAddress: '127.0.0.1:6', at: new Date() })).toBeUndefined();
  });

  it('keeps what reached the spool file across a crash', async () => {
    const root = mkdtempSync(join(tmpdir(), 'tk-pgrec-'));
    const service = service_(root);
    const sessionId = '55555555-5555-4555-8555-555555555555';
    const session = psqlSession(pgRecorder(service, 'demo-pg', () => ({ mode: 'best-effort', maxRowsPerStatement: 10 })), sessionId);
    session?.statement({ text: 'SELECT 1', protocol: 'simple', class: 'read', decision: 'allow', rule: undefined, reason: undefined });
    session?.statement({ text: 'SELECT 2', protocol: 'simple', class: 'read', decision: 'allow', rule: undefined, reason: undefined });
    await nextRound();
    // Flushed to the open chunk's file within the flush interval; then the process "dies" without sealing.
    await new Promise((r) => setTimeout(r, SPOOL_FLUSH_MS * 2));
    service.stop();
    const dir = join(root, sessionId);
    expect(sealedChunks(dir)).toHaveLength(0);
    expect(recoverSession(dir)?.ended?.complete).toBe(false);
    expect((await events(dir)).map((e) => e.text ?? e.e)).toEqual(['session.start', 'SELECT 1', 'SELECT 2']);
  });

  it('keeps each session\'s events in order while sessions start and interleave', async () => {
    const root = mkdtempSync(join(tmpdir(), 'tk-pgrec-'));
    const service = service_(root);
    const recorder = pgRecorder(service, 'demo-pg', () => ({ mode: 'best-effort', maxRowsPerStatement: 10 }));
    const start = (sessionId: string) => psqlSession(recorder, sessionId);
    const [a, b] = ['aaaaaaaa-0000-4000-8000-00000000000a', 'bbbbbbbb-0000-4000-8000-00000000000b'];
    const first = start(a);
    const statement = (text: string) => ({ text, protocol: 'simple' as const, class: 'read' as const, decision: 'allow' as const, rule: undefined, reason: undefined });
    first?.statement(statement('SELECT 1'));
    const second = start(b);
    first?.statement(statement('SELECT 2'));
    second?.statement(statement('SELECT 3'));
    first?.end('client closed');
    second?.end('client closed');
    await nextRound();
    expect((await events(join(root, a))).map((e) => e.text ?? e.e)).toEqual(['session.start', 'SELECT 1', 'SELECT 2', 'session.end']);
    expect((await events(join(root, b))).map((e) => e.text ?? e.e)).toEqual(['session.start', 'SELECT 3', 'session.end']);
  });
  it('gives each session its own statements and results when sessions repeat alike and unlike ones', async () => {
    const root = mkdtempSync(join(tmpdir(), 'tk-pgrec-'));
    const service = service_(root);
    const recorder = pgRecorder(service, 'demo-pg', () => ({ mode: 'best-effort', maxRowsPerStatement: 10 }));
    const ids = ['cccccccc-0000-4000-8000-00000000000c', 'dddddddd-0000-4000-8000-00000000000d', 'eeeeeeee-0000-4000-8000-00000000000e'];
    const sessions = ids.map((id) => psqlSession(recorder, id) as PgSessionObserver);
    // Each session parses its own statement event: the first two alike, the third not (and over the size kept once for all).
    const texts = ['SELECT abalance FROM pgbench_accounts WHERE aid = $1', 'SELECT abalance FROM pgbench_accounts WHERE aid = $1', `SELECT '${'x'.repeat(2000)}' WHERE $1`];
    const prepared = texts.map((text) => select(text));
    for (let round = 0; round < 3; round++) {
      sessions.forEach((s, i) => {
        s.statement(prepared[i] as StatementEvent);
        s.cycleEnd({ ...resultOf(0), durationMs: i });
      });
    }
    for (const s of sessions) s.end('client closed');
    await nextRound();
    for (const [i, id] of ids.entries()) {
      const recorded = (await events(join(root, id))).filter((e) => e.e === 'statement');
      expect(recorded.map((e) => [e.text, e.result])).toEqual(Array.from({ length: 3 }, () => [texts[i], { tags: ['SELECT 0'], rows: 0, durationMs: i }]));
    }
  });

  it('writes each hot event\'s time as toISOString would, across seconds, a clock set back, and years past 9999', async () => {
    const root = mkdtempSync(join(tmpdir(), 'tk-pgrec-'));
    const service = service_(root);
    const recorder = pgRecorder(service, 'demo-pg', () => ({ mode: 'best-effort', maxRowsPerStatement: 10 }));
    const [a, b] = ['ffffffff-0000-4000-8000-00000000000f', 'abababab-0000-4000-8000-0000000000ab'];
    const session = psqlSession(recorder, a) as PgSessionObserver;
    // Each event is stamped when it is reported (the worker writes it later), with a second session open.
    const other = psqlSession(recorder, b) as PgSessionObserver;
    const second = Date.UTC(2026, 10, 30, 0, 0, 0);
    const times = [second + 998, second + 999, second + 1001, second + 1999, second + 500, Date.UTC(10000, 0, 1, 0, 0, 0, 5), second + 7];
    let now = 0;
    const clock = jest.spyOn(Date, 'now').mockImplementation(() => now);
    try {
      for (const [i, time] of times.entries()) {
        now = time;
        session.statement(select(`SELECT ${i}`));
        session.cycleEnd(resultOf(0));
      }
    } finally {
      clock.mockRestore();
    }
    session.end('client closed');
    other.end('client closed');
    await nextRound();
    const stamped = (await events(join(root, a))).filter((e) => e.e === 'statement');
    expect(stamped.map((e) => [e.text, e.t])).toEqual(times.map((time, i) => [`SELECT ${i}`, new Date(time).toISOString()]));
  });

  /** Events of one session driven by `drive`, alone or with a second session open (sharing the ring and the worker). */
  async function recordedWith(sessions: 1 | 2, drive: (session: PgSessionObserver) => Promise<void> | void): Promise<Record<string, unknown>[]> {
    const root = mkdtempSync(join(tmpdir(), 'tk-pgrec-'));
    const service = service_(root);
    const recorder = pgRecorder(service, 'demo-pg', () => ({ mode: 'best-effort', maxRowsPerStatement: 100 }));
    const start = (sessionId: string) => psqlSession(recorder, sessionId);
    const sessionId = '66666666-6666-4666-8666-666666666666';
    const session = start(sessionId);
    const other = sessions === 2 ? start('77777777-7777-4777-8777-777777777777') : undefined;
    if (!session) throw new Error('recording is on');
    await drive(session);
    await nextRound();
    session.end('client closed');
    other?.end('client closed');
    return (await events(join(root, sessionId)))
      .filter((e) => e.e !== 'session.start' && e.e !== 'session.end')
      .map(({ t: _t, ...rest }) => rest);
  }
  const select = (text: string): StatementEvent => ({ text, protocol: 'extended', class: 'read', decision: 'allow', rule: 'r1', reason: undefined });
  const resultOf = (rows: number): CycleEndEvent => ({ endedAt: Date.now(), durationMs: 0, commandTags: [`SELECT ${rows}`], rowsSent: rows, errors: [] });
  const rowEvent = (i: number) => ({ e: 'row', v: [String(i)] });

  it.each([1, 2] as const)('folds up to FOLDED_ROWS_MAX rows into the statement line; further rows follow as row events (%i session(s))', async (sessions) => {
    const rows = FOLDED_ROWS_MAX + 2;
    const recorded = await recordedWith(sessions, (s) => {
      s.statement(select('SELECT n FROM big'));
      for (let i = 0; i < rows; i++) {
        const row = dataRow([String(i)]);
        s.dataRow(row, 0, row.length);
      }
      s.cycleEnd(resultOf(rows));
    });
    const folded = Array.from({ length: FOLDED_ROWS_MAX }, (_, i) => [String(i)]);
    expect(recorded).toEqual([
      { e: 'statement', text: 'SELECT n FROM big', protocol: 'extended', class: 'read', decision: 'allow', rule: 'r1', v: folded },
      rowEvent(FOLDED_ROWS_MAX),
      rowEvent(FOLDED_ROWS_MAX + 1),
      { e: 'result', tags: [`SELECT ${rows}`], rows, durationMs: 0 },
    ]);
  });

  it('folds a result without rows, and repeats a prepared statement\'s event exactly at each execution', async () => {
    const prepared = select('SELECT abalance FROM pgbench_accounts WHERE aid = $1');
    const recorded = await recordedWith(2, (s) => {
      for (let i = 0; i < 3; i++) {
        s.statement(prepared);
        const row = dataRow([String(i)]);
        s.dataRow(row, 0, row.length);
        s.cycleEnd(resultOf(1));
      }
      s.statement(select('SET x = 1'));
      s.cycleEnd({ endedAt: Date.now(), durationMs: 2, commandTags: ['SET'], rowsSent: 0, errors: [] });
    });
    const execution = (i: number) => ({ e: 'statement', text: prepared.text, protocol: 'extended', class: 'read', decision: 'allow', rule: 'r1', v: [[String(i)]], result: { tags: ['SELECT 1'], rows: 1, durationMs: 0 } });
    expect(recorded).toEqual([
      execution(0),
      execution(1),
      execution(2),
      { e: 'statement', text: 'SET x = 1', protocol: 'extended', class: 'read', decision: 'allow', rule: 'r1', result: { tags: ['SET'], rows: 0, durationMs: 2 } },
    ]);
  });

  it('repeats a statement exactly whatever its text (escaped, non-ASCII, longer than the kept copy) and follows its fields when only they change', async () => {
    const quoted = select('SELECT "é" FROM t WHERE x = $1 -- a\ttab\nand a line');
    const long = select(`SELECT ${'x'.repeat(3000)}`);
    const denied: StatementEvent = { ...quoted, decision: 'deny', rule: undefined, reason: 'no' };
    const order = [quoted, quoted, quoted, long, long, quoted, quoted, denied, quoted, quoted];
    const recorded = await recordedWith(1, (s) => {
      for (const statement of order) {
        s.statement(statement);
        s.cycleEnd(resultOf(0));
      }
    });
    const fields = (e: StatementEvent) => Object.fromEntries(Object.entries({ text: e.text, protocol: e.protocol, class: e.class, decision: e.decision, rule: e.rule, reason: e.reason }).filter(([, v]) => v !== undefined));
    expect(recorded).toEqual(order.map((e) => ({ e: 'statement', ...fields(e), result: { tags: ['SELECT 0'], rows: 0, durationMs: 0 } })));
  });

  it('writes each folded result as it was, whether like the one before it or not (duration, rows, tag, errors, the cap)', async () => {
    const statement = select('SELECT abalance FROM pgbench_accounts WHERE aid = $1');
    const results: { rows: string[]; result: CycleEndEvent }[] = [
      { rows: ['1'], result: resultOf(1) },
      { rows: ['2'], result: resultOf(1) },
      // A row counted but not passed on (as when it was not recorded): the same result, without the rows' close.
      { rows: [], result: resultOf(1) },
      { rows: ['3'], result: { ...resultOf(1), durationMs: 5 } },
      { rows: [], result: resultOf(0) },
      { rows: ['4'], result: { ...resultOf(1), durationMs: 5, errors: ['boom'] } },
      { rows: ['5', '6'], result: resultOf(2) },
      { rows: ['7'], result: { ...resultOf(1), rowsSent: 101 } },
      { rows: ['8'], result: { ...resultOf(1), commandTags: ['FETCH 1'] } },
      { rows: ['9'], result: resultOf(1) },
    ];
    const recorded = await recordedWith(2, (s) => {
      for (const { rows, result } of results) {
        s.statement(statement);
        for (const v of rows) {
          const row = dataRow([v]);
          s.dataRow(row, 0, row.length);
        }
        s.cycleEnd(result);
      }
    });
    expect(recorded).toEqual(
      results.map(({ rows, result }) => ({
        e: 'statement',
        text: statement.text,
        protocol: 'extended',
        class: 'read',
        decision: 'allow',
        rule: 'r1',
        ...(rows.length > 0 ? { v: rows.map((v) => [v]) } : {}),
        result: {
          tags: result.commandTags,
          rows: result.rowsSent,
          ...(result.rowsSent > 100 ? { rowsNotRecorded: result.rowsSent - 100 } : {}),
          durationMs: result.durationMs,
          ...(result.errors.length > 0 ? { errors: result.errors } : {}),
        },
      })),
    );
  });

  it('folds nothing into a statement that is not the only one before a result (pipelines, batches)', async () => {
    const recorded = await recordedWith(2, (s) => {
      s.statement(select('SELECT 1'));
      s.statement(select('SELECT 2'));
      for (const v of ['1', '2']) {
        const row = dataRow([v]);
        s.dataRow(row, 0, row.length);
        s.cycleEnd(resultOf(1));
      }
    });
    const statement = (text: string) => ({ e: 'statement', text, protocol: 'extended', class: 'read', decision: 'allow', rule: 'r1' });
    expect(recorded).toEqual([
      statement('SELECT 1'),
      statement('SELECT 2'),
      rowEvent(1),
      { e: 'result', tags: ['SELECT 1'], rows: 1, durationMs: 0 },
      rowEvent(2),
      { e: 'result', tags: ['SELECT 1'], rows: 1, durationMs: 0 },
    ]);
  });

  it('writes a statement line held open to the spool file at the flush, whole, when its result is late', async () => {
    const root = mkdtempSync(join(tmpdir(), 'tk-pgrec-'));
    const service = service_(root);
    const sessionId = '88888888-8888-4888-8888-888888888888';
    const session = psqlSession(pgRecorder(service, 'demo-pg', () => ({ mode: 'best-effort', maxRowsPerStatement: 10 })), sessionId);
    session?.statement(select('SELECT pg_sleep(60)'));
    const row = dataRow(['first']);
    session?.dataRow(row, 0, row.length);
    await nextRound();
    await new Promise((r) => setTimeout(r, SPOOL_FLUSH_MS * 2));
    // The process dies before the result: what is in the file is whole lines.
    service.stop();
    const dir = join(root, sessionId);
    recoverSession(dir);
    expect((await events(dir)).map(({ t: _t, ...rest }) => rest)).toEqual([
      expect.objectContaining({ e: 'session.start' }),
      { e: 'statement', text: 'SELECT pg_sleep(60)', protocol: 'extended', class: 'read', decision: 'allow', rule: 'r1', v: [['first']] },
    ]);
  });
});
