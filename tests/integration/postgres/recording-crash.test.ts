import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { stringify as toYaml } from 'yaml';
import type { LocalControlPlane } from '../../../local/control-plane';
import { freePort } from '../../../local/free-port';
import { devIssuerConfig, withDevIssuer } from '../../../local/oidc/dev-issuer';
import { twokey, TWOKEY_BIN } from '../../support/cli';
import { api, startTestControlPlane, tokenFor, waitFor } from '../../support/control-plane';
import { PG_TEST_POLICY } from '../../support/pg-stack';
import { startTestPostgres, type TestPostgres } from '../../support/postgres';
import { openPsql } from '../../support/psql';

const HOST = '127.0.0.1';

/** Whether a chunk file in the agent's spool (`<stateDir>/spool/<session>/*.gz`) holds `text` yet. */
function spooled(stateDir: string, text: string): true | undefined {
  const root = join(stateDir, 'spool');
  if (!existsSync(root)) return undefined;
  for (const session of readdirSync(root)) {
    for (const file of readdirSync(join(root, session))) {
      if (!file.endsWith('.gz')) continue;
      try {
        if (gunzipSync(readFileSync(join(root, session, file))).toString('utf8').includes(text)) return true;
      } catch {
        // A member being written, or the file just moved: looked at again at the next poll.
      }
    }
  }
  return undefined;
}

/** The agent as deployed: `twokey agent --config FILE`, a process of its own that the test can kill -9. */
describe('recording across kill -9 of the agent process', () => {
  let pg: TestPostgres;
  let cp: LocalControlPlane;
  let agent: ChildProcess | undefined;
  let configFile: string;
  let key: string;
  let port: number;
  let stateDir: string;

  const startAgentProcess = async (): Promise<ChildProcess> => {
    const child = spawn(process.execPath, [TWOKEY_BIN, 'agent', '--config', configFile], { stdio: 'ignore', env: { ...process.env, TWOKEY_AGENT_KEY: key, LOG_LEVEL: 'warn' } });
    await waitFor(
      () =>
        new Promise<true | undefined>((resolve) => {
          const s = connect(port, HOST, () => {
            s.destroy();
            resolve(true);
          });
          s.on('error', () => resolve(undefined));
        }),
      60_000,
      'agent listening',
    );
    // Reads are decided by the cached policy: wait until the agent has one (it keeps it in its state dir).
    await waitFor(() => (existsSync(join(stateDir, 'policy.json')) ? true : undefined), 60_000, 'agent policy');
    return child;
  };

  beforeAll(async () => {
    pg = await startTestPostgres();
    cp = await startTestControlPlane();
    const root = await tokenFor(cp, 'root', ['admin']);
    await api(cp, root, 'PUT', '/policies', withDevIssuer(PG_TEST_POLICY, cp.issuer), { 'if-match': '"0"' });
    key = (await api(cp, root, 'POST', '/agents', JSON.stringify({ name: 'pg-agent' }))).body.key as string;
    port = await freePort(HOST);
    const dir = mkdtempSync(join(tmpdir(), 'tk-crash-agent-'));
    configFile = join(dir, 'agent.yaml');
    stateDir = join(dir, 'state');
    writeFileSync(
      configFile,
      toYaml({
        name: 'pg-agent',
        controlPlane: { url: cp.wsUrl },
        stateDir,
        identity: { issuers: [devIssuerConfig(cp.issuer, 'data')] },
        targets: [{ name: 'test-pg', protocol: 'postgres', listen: { host: HOST, port }, upstream: { host: HOST, port: pg.port, database: 'demo' }, readCredential: pg.read, writeCredential: pg.write }],
      }),
    );
    agent = await startAgentProcess();
  }, 120_000);

  afterAll(async () => {
    agent?.kill('SIGKILL');
    await cp?.stop();
    await pg?.stop();
  });

  it('uploads every chunk spooled before the kill after a restart, verifies it, and marks the session incomplete', async () => {
    const psql = openPsql(HOST, port, 'kit', await tokenFor(cp, 'kit', ['support'], { audience: 'data' }));
    await psql.run("SELECT 'spooled-before-the-kill'", 'spooled-before-the-kill');
    await psql.run('SELECT name FROM customers WHERE id = 3', 'Dev Ahmed');
    // Once both statements' events are in the spool's file (within SPOOL_FLUSH_MS when the machine has a
    // moment for the recorder's worker), the process dies without warning.
    await waitFor(() => spooled(stateDir, 'Dev Ahmed'), 30_000, 'the events in the spool');
    agent?.kill('SIGKILL');
    await psql.close();

    agent = await startAgentProcess();
    const erin = await tokenFor(cp, 'erin', ['auditor']);
    const cli = (args: string[]) => twokey([...args, '--url', cp.httpUrl], { TWOKEY_TOKEN: erin });
    const session = await waitFor(
      async () => {
        const list = JSON.parse((await cli(['sessions', 'list', '--user', 'kit', '--json'])).stdout) as { sessions: { sessionId: string; status: string; chunkCount: number }[] };
        return list.sessions.find((s) => s.status === 'incomplete');
      },
      60_000,
      'the recovered session',
    );
    expect(session.chunkCount).toBeGreaterThanOrEqual(1);
    const got = await cli(['recording', 'get', session.sessionId]);
    expect(got.code).toBe(0);
    expect(got.stderr).toMatch(/verified/);
    const replay = await cli(['replay', session.sessionId]);
    expect(replay.stdout).toContain("SELECT 'spooled-before-the-kill'");
    expect(replay.stdout).toContain('Dev Ahmed');
  }, 120_000);
});
