import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { SPOOL_FLUSH_MS } from '../../../agent/recording/spool';
import { TerminalRecording, type TerminalStart } from '../../../agent/recording/terminal-recorder';
import { RecordingService } from '../../../agent/recording/recording-service';
import { ContentScanner } from '../../../core/masking/scanner';
import { getRuntime } from '../../../lambdas/shared/runtime';
import { startLocalS3 } from '../../../local/aws/s3';
import { twokey } from '../../support/cli';
import { waitFor } from '../../support/control-plane';
import { startPgStack, type PgStack } from '../../support/pg-stack';
import { WireClient, wire } from '../../support/pg-wire';
import { openPsql } from '../../support/psql';
import { postDecision, waitForMail } from '../../support/outbox';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** Every file under `dir` (s3rver keeps each object as a file below its key). */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? filesUnder(join(dir, d.name)) : [join(dir, d.name)]));
}

describe('session recording for Postgres', () => {
  let stack: PgStack;
  let erin: string;
  const cli = (args: string[], token: string) => twokey([...args, '--url', stack.cp.httpUrl], { TWOKEY_TOKEN: token });

  beforeAll(async () => {
    stack = await startPgStack();
    erin = await stack.apiToken('erin', ['auditor']);
  }, 120_000);
  afterAll(() => stack?.stop());

  async function psqlSession(user: string, groups: string[], ...commands: string[]): Promise<void> {
    const { host, port } = stack.endpoint('test-pg');
    const token = await stack.token(user, groups);
    await new Promise<void>((resolve) =>
      execFile('psql', [`host=${host} port=${port} dbname=demo user=${user}`, '-X', ...commands.flatMap((c) => ['-c', c])], { env: { ...process.env, PGPASSWORD: token } }, () => resolve()),
    );
  }

  const shipped = (): Promise<true> => waitFor(() => (stack.agent.context.recording.pending().sessions === 0 ? true : undefined), 20_000, 'recording shipped');

  async function sessionsOf(user: string): Promise<{ sessionId: string; status: string; chunkCount: number }[]> {
    const out = await cli(['sessions', 'list', '--user', user, '--json'], erin);
    return (JSON.parse(out.stdout) as { sessions: { sessionId: string; status: string; chunkCount: number }[] }).sessions;
  }

  /** A session spoken message by message: `cycle` sends messages and waits for their ReadyForQuery; `end` returns the replay. */
  async function wireSession(user: string): Promise<{ cycle: (...messages: Buffer[]) => Promise<void>; end: () => Promise<string> }> {
    const { host, port } = stack.endpoint('test-pg');
    const c = await WireClient.login(host, port, await stack.token(user, ['support']));
    return {
      async cycle(...messages) {
        const from = c.received.length;
        c.write(...messages);
        await c.readyCount(1, from);
      },
      async end() {
        c.write(wire.terminate());
        c.close();
        await shipped();
        const [session] = await sessionsOf(user);
        return (await cli(['replay', session?.sessionId ?? ''], erin)).stdout;
      },
    };
  }

  it('records statements and results; an auditor lists, verifies and replays the session', async () => {
    await psqlSession('alice', ['support'], 'SELECT id, name FROM customers ORDER BY id LIMIT 2', 'DROP TABLE orders');
    await shipped();
    const [session] = await sessionsOf('alice');
    expect(session).toMatchObject({ status: 'complete', chunkCount: 1 });
    const got = await cli(['recording', 'get', session?.sessionId ?? ''], erin);
    expect(got.code).toBe(0);
    expect(got.stderr).toMatch(/verified: 1 chunk/);
    const replay = await cli(['replay', session?.sessionId ?? ''], erin);
    expect(replay.stdout).toContain('demo=> SELECT id, name FROM customers ORDER BY id LIMIT 2');
    expect(replay.stdout).toContain('  1 | Ben Ahmed');
    expect(replay.stdout).toContain('SELECT 2 in');
    expect(replay.stdout).toMatch(/DROP TABLE orders\n.*-- ddl, deny by rule no-destructive: blocked by no-destructive \(drop\)/);
  });

  it('records what an approved statement did on the write credential: its rows, its command tag and its errors', async () => {
    const done = psqlSession('rhea', ['support'], "UPDATE customers SET name = 'Recorded Rhea' WHERE id = 7 RETURNING id, name", "UPDATE customers SET name = NULL WHERE id = 8");
    const update = await waitForMail(stack.cp.outboxDir, 'bob@example.com', 'Recorded Rhea');
    await postDecision(update.link, update.token, 'approve');
    const failing = await waitForMail(stack.cp.outboxDir, 'bob@example.com', 'SET name = NULL WHERE id = 8');
    await postDecision(failing.link, failing.token, 'approve');
    await done;
    await shipped();
    const [session] = await sessionsOf('rhea');
    const replay = (await cli(['replay', session?.sessionId ?? ''], erin)).stdout;
    expect(replay).toContain('  7 | Recorded Rhea');
    expect(replay).toContain('UPDATE 1 in');
    // customers.name is NOT NULL: the write credential's error is the recorded outcome of the second request.
    expect(replay).toMatch(/null value in column "name"/);
  });

  it('replays what callers wrote with terminal escape sequences shown, not run', async () => {
    await psqlSession('esc', ['support'], "SELECT E'\\x1b]0;owned\\x07\\x1b[2J' AS t /* \u202E */");
    await shipped();
    const [session] = await sessionsOf('esc');
    const replay = (await cli(['replay', session?.sessionId ?? ''], erin)).stdout;
    expect(replay).toContain('\\u001B]0;owned\\u0007\\u001B[2J');
    expect(replay).toContain('/* \\u202E */');
    expect(replay).not.toMatch(/[\u001B\u0007\u202E]/);
  });

  it('records every execution of a named prepared statement, not only its Parse', async () => {
    const { host, port } = stack.endpoint('test-pg');
    const client = new pg.Client({ host, port, database: 'demo', user: 'walt', password: await stack.token('walt', ['support']) });
    await client.connect();
    // node-postgres parses a named statement once, then only binds and executes it.
    for (const id of [1, 2, 3]) {
      const result = await client.query({ name: 'customer-name', text: 'SELECT name FROM customers WHERE id = $1', values: [id] });
      expect(result.rows).toHaveLength(1);
    }
    await client.query('SELECT 42 AS answer');
    await client.end();
    await shipped();
    const [session] = await sessionsOf('walt');
    const replay = (await cli(['replay', session?.sessionId ?? ''], erin)).stdout;
    expect(replay.split('demo=> SELECT name FROM customers WHERE id = $1')).toHaveLength(4);
    expect(replay).toContain('demo=> SELECT 42 AS answer');
  });

  it('records a Bind as the statement its name stands for now: not after a Close, the new text after a new Parse', async () => {
    const { cycle, end } = await wireSession('wanda');
    const batch = (...messages: Buffer[]): Promise<void> => cycle(...messages, wire.sync());
    const execute = [wire.bind('', 's1'), wire.execute('')];
    await batch(wire.parse('s1', 'SELECT 1 AS first'));
    // Another named statement stays prepared throughout.
    await batch(wire.parse('s2', 'SELECT 3 AS other'));
    await batch(...execute);
    await batch(wire.closeStatement('s1'));
    // The server refuses it (no such statement): it ran nothing, and nothing is recorded as run.
    await batch(...execute);
    await batch(wire.parse('s1', 'SELECT 2 AS second'));
    await batch(...execute);
    await batch(...execute);
    const replay = await end();
    // Each Parse and each Bind that ran is a statement in the recording.
    expect(replay.split('demo=> SELECT 1 AS first')).toHaveLength(3);
    expect(replay.split('demo=> SELECT 2 AS second')).toHaveLength(4);
    expect(replay.split('demo=> SELECT 3 AS other')).toHaveLength(2);
  });

  it('forgets a named statement once the server confirms SQL dropped it (DEALLOCATE, DISCARD ALL), not when the drop did not run', async () => {
    const { cycle, end } = await wireSession('wendy');
    const run = (name: string): Buffer[] => [wire.bind('', name), wire.execute(''), wire.sync()];
    await cycle(wire.parse('s1', 'SELECT 1 AS dropped'), wire.sync());
    await cycle(wire.parse('s2', 'SELECT 2 AS kept'), wire.sync());
    await cycle(wire.query('DEALLOCATE s1'));
    // The server refuses it (no such statement): nothing is recorded as run.
    await cycle(...run('s1'));
    // The error stops the query before its DEALLOCATE: s2 is still prepared, and its execution is recorded.
    await cycle(wire.query('SELECT 1/0; DEALLOCATE s2'));
    await cycle(...run('s2'));
    await cycle(wire.query('DISCARD ALL'));
    await cycle(...run('s2'));
    const replay = await end();
    // Each Parse, and each Bind that ran.
    expect(replay.split('demo=> SELECT 1 AS dropped')).toHaveLength(2);
    expect(replay.split('demo=> SELECT 2 AS kept')).toHaveLength(3);
    expect(replay).toContain('prepared statement "s1" does not exist');
    expect(replay).toContain('prepared statement "s2" does not exist');
  });

  /** A terminal recording (as SSH starts one) of `user` on test-pg. */
  const terminalOf = (user: string, options: Partial<TerminalStart>): TerminalRecording =>
    new TerminalRecording(stack.agent.context.recording, {
      sessionId: randomUUID(),
      target: 'test-pg',
      protocol: 'ssh',
      identity: { subject: user, name: user, email: `${user}@example.com`, groups: ['support'], issuer: stack.cp.issuer },
      width: 80,
      height: 24,
      ...options,
    });

  it('records a terminal session as asciicast v2, masked, and plays it back', async () => {
    const recording = terminalOf('tom', { command: 'bash', scanner: new ContentScanner(['email'], () => '****') });
    recording.output('$ cat contacts\r\nada@exa');
    recording.output('mple.com\r\n');
    recording.mark('blocked: rm -rf /');
    recording.end('client closed');
    await shipped();
    const [session] = await sessionsOf('tom');
    expect((await cli(['recording', 'get', session?.sessionId ?? ''], erin)).code).toBe(0);
    const replay = await cli(['replay', session?.sessionId ?? ''], erin);
    expect(replay.stdout).toBe('$ cat contacts\r\n****\r\n');
    expect(replay.stderr).toContain('-- tom on test-pg: bash (80x24)');
    expect(replay.stderr).toMatch(/-- \[\d+\.\d{3}s\] blocked: rm -rf \//);
  });

  it('records keystrokes when asked, a value typed key by key masked whole', async () => {
    const recording = terminalOf('tina', { recordInput: true, inputScanner: new ContentScanner(['email'], () => '****') });
    for (const key of 'mail ada@example.com\r') recording.input(key);
    recording.end('client closed');
    await shipped();
    const [session] = await sessionsOf('tina');
    const replay = await cli(['replay', session?.sessionId ?? ''], erin);
    expect(replay.stderr).toMatch(/-- \[\d+\.\d{3}s\] typed mail \*\*\*\*\\u000D/);
    expect(replay.stderr).not.toContain('example.com');
  });

  it('requires an auditor (or admin) token', async () => {
    const alice = await stack.apiToken('alice', ['support']);
    const refused = await cli(['sessions', 'list', '--json'], alice);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/HTTP 403/);
  });

  it('gives auditors presigned URLs that expire', async () => {
    const url = await getRuntime('test').deps.recordings.presignGet('recordings/none', 1);
    await new Promise((r) => setTimeout(r, 2_100));
    expect((await fetch(url)).status).toBe(403);
    expect(statSync(stack.cp.s3.directory).isDirectory()).toBe(true);
  });

  it('exits 3 and names the chunk when a stored byte changes', async () => {
    await psqlSession('tess', ['support'], 'SELECT 42');
    await shipped();
    const [session] = await sessionsOf('tess');
    const stored = filesUnder(join(stack.cp.s3.directory)).find((f) => f.includes(session?.sessionId ?? '?') && f.includes('0.ndjson.gz') && !f.includes('metadata'));
    expect(stored).toBeDefined();
    const bytes = readFileSync(stored as string);
    bytes[bytes.length - 12] = (bytes[bytes.length - 12] as number) ^ 0x01;
    writeFileSync(stored as string, bytes);
    const got = await cli(['recording', 'get', session?.sessionId ?? ''], erin);
    expect(got.code).toBe(3);
    expect(got.stderr).toMatch(/chunk 0/);
  });

  it('uploads what was spooled before a crash after a restart, and marks the session incomplete', async () => {
    const root = stack.agent.context.recording.root;
    // A recorder that dies mid-session: its spool stays on disk with an open chunk.
    const crashed = new RecordingService(root, stack.agent.tunnel, quiet);
    const spool = crashed.begin({ sessionId: 'c0ffee00-0000-4000-8000-000000000001', target: 'test-pg', protocol: 'postgres', format: 'ndjson', identity: { subject: 'kim', name: 'kim', groups: [] }, startedAt: new Date().toISOString() });
    spool.append({ e: 'statement', text: 'SELECT before the crash' });
    spool.seal();
    spool.append({ e: 'statement', text: 'SELECT still open' });
    await new Promise((r) => setTimeout(r, SPOOL_FLUSH_MS * 2));
    crashed.stop(); // the process is gone: its timers with it
    // After the restart a new recorder finds the leftover spool and ships it first.
    const restarted = new RecordingService(root, stack.agent.tunnel, quiet);
    restarted.start();
    await waitFor(() => (restarted.pending().sessions === 0 ? true : undefined), 20_000, 'leftovers shipped');
    restarted.stop();
    const [session] = await sessionsOf('kim');
    expect(session).toMatchObject({ status: 'incomplete', chunkCount: 2 });
    const replay = await cli(['replay', session?.sessionId ?? ''], erin);
    expect(replay.stdout).toContain('SELECT before the crash');
    expect(replay.stdout).toContain('SELECT still open');
  });

  it('keeps a live session recording through a 30 s S3 outage and drains the spool, losing nothing', async () => {
    const s3 = stack.cp.s3;
    const s3Port = Number(new URL(s3.endpoint).port);
    const { host, port } = stack.endpoint('test-pg');
    const psql = openPsql(host, port, 'una', await stack.token('una', ['support']));
    await psql.run("SELECT 'before the outage'", 'before the outage');
    await s3.stop();
    // Statements keep coming for 30 s while S3 is down: chunks are sealed every 10 s and stay in the spool.
    for (let i = 0; i < 6; i++) {
      await psql.run(`SELECT 'during the outage ${i}'`, `during the outage ${i}`);
      await new Promise((r) => setTimeout(r, 5_000));
    }
    expect(stack.agent.context.recording.pending().chunks).toBeGreaterThanOrEqual(2);
    const back = await startLocalS3({ directory: s3.directory, port: s3Port, host: '127.0.0.1' });
    await psql.run("SELECT 'after the outage'", 'after the outage');
    await psql.close();
    await shipped();
    const [session] = await sessionsOf('una');
    expect(session?.status).toBe('complete');
    expect(session?.chunkCount).toBeGreaterThanOrEqual(3);
    expect((await cli(['recording', 'get', session?.sessionId ?? ''], erin)).code).toBe(0);
    const replay = (await cli(['replay', session?.sessionId ?? ''], erin)).stdout;
    for (const text of ['before the outage', ...Array.from({ length: 6 }, (_, i) => `during the outage ${i}`), 'after the outage']) expect(replay).toContain(text);
    await back.stop();
  }, 120_000);
});
