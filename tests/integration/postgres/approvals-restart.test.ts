import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RECONNECT_CAP_MS } from '../../../agent/tunnel/backoff';
import { waitFor } from '../../support/control-plane';
import { postDecision, readOutbox, waitForMail } from '../../support/outbox';
import { startPgStack, type PgStack } from '../../support/pg-stack';

/** Beyond the backoff cap: the handshake (hello, policy) after the connection opens. */
const RECONNECT_MARGIN_MS = 10_000;

describe('a pending approval across a control-plane restart (local mode, on-disk state)', () => {
  let stack: PgStack;

  beforeAll(async () => {
    stack = await startPgStack({ controlPlaneDir: mkdtempSync(join(tmpdir(), 'tk-cp-restart-')) });
  }, 120_000);
  afterAll(() => stack?.stop());

  it('keeps the request, sends no second email, and delivers the decision to the waiting caller', async () => {
    const { host, port } = stack.endpoint('test-pg');
    const token = await stack.token('alice', ['support']);
    const psql = new Promise<{ stdout: string; stderr: string }>((resolve) => {
      execFile('psql', [`host=${host} port=${port} dbname=demo user=alice`, '-X', '-c', "UPDATE orders SET status = 'survived' WHERE id = 7"], { env: { ...process.env, PGPASSWORD: token } }, (_e, stdout, stderr) =>
        resolve({ stdout, stderr }),
      );
    });
    const outbox = stack.cp.outboxDir;
    const mail = await waitForMail(outbox, 'bob@example.com', 'survived');

    await stack.restartControlPlane();
    // The agent's reconnect backoff grows while the control plane is down: its next try can be up to the cap away.
    await waitFor(() => stack.agent.tunnel.connected || undefined, RECONNECT_CAP_MS + RECONNECT_MARGIN_MS, 'agent reconnected');
    await new Promise((r) => setTimeout(r, 500));
    expect(readOutbox(outbox).filter((m) => m.text.includes('survived'))).toHaveLength(1);

    expect((await postDecision(mail.link, mail.token, 'approve')).status).toBe(200);
    const out = await psql;
    expect(out.stdout).toMatch(/UPDATE 1/);
  }, RECONNECT_CAP_MS + 60_000);
});
