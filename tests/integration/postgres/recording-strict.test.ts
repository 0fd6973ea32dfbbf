import { execFile } from 'node:child_process';
import { startLocalS3 } from '../../../local/aws/s3';
import { api, waitFor } from '../../support/control-plane';
import { PG_TEST_POLICY, startPgStack, type PgStack } from '../../support/pg-stack';
import { openPsql } from '../../support/psql';
import { callTool, endSession, mcpClient } from '../../support/mcp-client';

describe('strict recording', () => {
  let stack: PgStack;

  beforeAll(async () => {
    // A spool that fills with the first chunk, so an S3 outage reaches the cap at once.
    // test-pg-rw overrides the policy's strict recording with best-effort.
    const rwTarget = '{ name: test-pg-rw, protocol: postgres, agent: pg-agent }';
    const policy = `${PG_TEST_POLICY.replace(rwTarget, `${rwTarget.slice(0, -2)}, recording: { mode: best-effort } }`)}\nrecording: { mode: strict }\n`;
    stack = await startPgStack({
      policy,
      spoolCapBytes: 1,
      mcp: true,
      extraTargets: (p) => [{ name: 'test-pg-rw', protocol: 'postgres', listen: { host: '127.0.0.1', port: 0 }, upstream: { host: '127.0.0.1', port: p.port, database: 'demo' }, readCredential: p.read, writeCredential: p.write }],
    });
  }, 120_000);
  afterAll(() => stack?.stop());

  const psql = async (sql: string, target = 'test-pg', user = 'alice'): Promise<{ stdout: string; stderr: string }> => {
    const { host, port } = stack.endpoint(target);
    const token = await stack.token(user, user === 'alice' ? ['support'] : []);
    return new Promise((resolve) =>
      execFile('psql', [`host=${host} port=${port} dbname=demo user=${user}`, '-X', '-A', '-t', '-c', sql], { env: { ...process.env, PGPASSWORD: token } }, (_e, stdout, stderr) =>
        resolve({ stdout, stderr }),
      ),
    );
  };

  it('refuses new sessions while recording cannot proceed, and serves again once the spool drains', async () => {
    const s3 = stack.cp.s3;
    const port = Number(new URL(s3.endpoint).port);
    await s3.stop();
    expect((await psql('SELECT 1')).stdout.trim()).toBe('1');
    await waitFor(() => stack.agent.context.recording.full() || undefined, 10_000, 'spool full');
    const refused = await psql('SELECT 2');
    expect(refused.stderr).toMatch(/FATAL:\s+twokey: recording cannot proceed \(the agent's spool is full\) and the policy requires it/);
    // A target whose own recording is best-effort is served meanwhile.
    expect(await psql('SELECT 4', 'test-pg-rw', 'loader')).toEqual({ stdout: '4\n', stderr: '' });

    const back = await startLocalS3({ directory: s3.directory, port, host: '127.0.0.1' });
    await waitFor(() => (!stack.agent.context.recording.full() ? true : undefined), 20_000, 'spool drained');
    expect((await psql('SELECT 3')).stdout.trim()).toBe('3');
    await waitFor(() => (stack.agent.context.recording.pending().sessions === 0 ? true : undefined), 20_000, 'shipped');
    await back.stop();
  }, 60_000);

  it('refuses an MCP tool call on a strict target as a tool error while recording cannot proceed', async () => {
    const s3 = stack.cp.s3;
    const port = Number(new URL(s3.endpoint).port);
    const client = await mcpClient(stack.mcpUrl(), await stack.token('alice', ['support']));
    await s3.stop();
    expect((await psql('SELECT 1')).stdout.trim()).toBe('1');
    await waitFor(() => stack.agent.context.recording.full() || undefined, 10_000, 'spool full');
    const refused = await callTool(client, 'query', { target: 'test-pg', sql: 'SELECT 5' });
    expect(refused).toMatchObject({ isError: true, text: "twokey: recording cannot proceed (the agent's spool is full) and the policy requires it" });

    const back = await startLocalS3({ directory: s3.directory, port, host: '127.0.0.1' });
    await waitFor(() => (!stack.agent.context.recording.full() ? true : undefined), 20_000, 'spool drained');
    expect((await callTool(client, 'query', { target: 'test-pg', sql: 'SELECT 6' })).json.rows).toEqual([['6']]);
    await endSession(client);
    await waitFor(() => (stack.agent.context.recording.pending().sessions === 0 ? true : undefined), 20_000, 'shipped');
    await back.stop();
  }, 60_000);
});

describe('strict recording when a session lost events', () => {
  let stack: PgStack;

  beforeAll(async () => {
    stack = await startPgStack({ policy: `${PG_TEST_POLICY}\nrecording: { mode: strict }\n` });
  }, 120_000);
  afterAll(() => stack?.stop());

  type Listed = { sessionId: string; status: string };
  const sessionsOf = async (user: string): Promise<Listed[]> => {
    const auditor = await stack.apiToken('erin', ['auditor']);
    return ((await api(stack.cp, auditor, 'GET', `/sessions?user=${user}`)).body.sessions ?? []) as Listed[];
  };

  // The recorder marks a session lost when its worker stopped or could not keep up for RING_FULL_WAIT_MS;
  // the test marks it through the same call (forcing either from outside the agent has no hook).
  it('ends the session with a clear reason, records it incomplete, and serves new sessions', async () => {
    const { host, port } = stack.endpoint('test-pg');
    const psql = openPsql(host, port, 'alice', await stack.token('alice', ['support']));
    let live: Listed;
    try {
      await psql.run("SELECT 'before the loss'", 'before the loss');
      live = await waitFor(async () => (await sessionsOf('alice')).find((x) => x.status === 'live'), 20_000, "alice's live session");
      stack.agent.context.recording.markLost(live.sessionId);
      await psql.run("SELECT 'after the loss'", 'recording lost events of this session');
      expect(psql.output()).not.toContain('after the loss\n');
    } finally {
      // Ended whatever happened, so that the stack can stop.
      await psql.close();
    }
    const ended = await waitFor(async () => (await sessionsOf('alice')).find((x) => x.sessionId === live.sessionId && x.status !== 'live'), 30_000, 'the session ended');
    expect(ended.status).toBe('incomplete');

    const next = openPsql(host, port, 'alice', await stack.token('alice', ['support']));
    await next.run("SELECT 'a new session'", 'a new session');
    await next.close();
  }, 90_000);
});
