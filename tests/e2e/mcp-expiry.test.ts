import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import pg from 'pg';
import { HOLD_GRACE_SECONDS } from '../../agent/approvals/approval-flow';
import { demoCustomer } from '../../local/demo/seed';
import { waitFor } from '../support/control-plane';
import { callTool, mcpClient } from '../support/mcp-client';
import { PG_TEST_POLICY, startPgStack, type PgStack } from '../support/pg-stack';

/** The shortest approval timeout the policy takes: the test waits it out. */
const TIMEOUT_SECONDS = 10;

// The test policy with the shortest approval timeout for support's writes.
const POLICY = PG_TEST_POLICY.replace('write: { approve: { groups: [dba] } }', `write: { approve: { groups: [dba], timeoutSeconds: ${TIMEOUT_SECONDS} } }`);

describe('an MCP write whose approval timed out (official SDK client)', () => {
  let stack: PgStack;
  let client: Client;

  beforeAll(async () => {
    stack = await startPgStack({ policy: POLICY, mcp: true });
    client = await mcpClient(stack.mcpUrl(), await stack.token('hal', ['support']));
  }, 120_000);
  afterAll(async () => {
    await client?.close();
    await stack?.stop();
  });

  it('reports expired, not failed, when the agent hears no decision within the timeout and grace (the control plane unreachable), and nothing runs', async () => {
    const held = await callTool(client, 'execute', { target: 'test-pg', sql: "UPDATE customers SET name = 'Never decided' WHERE id = 35" });
    expect(held.json).toMatchObject({ status: 'pending_approval', reviewers: ['dba'] });
    // The agent's tunnel goes down with the request held: the control plane's expiry cannot reach it, so it gives up after timeout + grace.
    await stack.agent.tunnel.stop();
    try {
      const status = await waitFor(async () => {
        const r = await callTool(client, 'request_status', { target: 'test-pg', request_id: held.json.request_id });
        return r.json?.status === 'pending_approval' ? undefined : r.json;
      }, (TIMEOUT_SECONDS + HOLD_GRACE_SECONDS) * 1000 + 30_000, 'the end of the hold');
      expect(status).toEqual({ status: 'expired', request_id: held.json.request_id, message: `twokey: no decision on request ${held.json.request_id} within ${TIMEOUT_SECONDS}s` });
    } finally {
      stack.agent.tunnel.start();
    }
    const admin = new pg.Client({ connectionString: stack.pg.adminUrl });
    await admin.connect();
    try {
      expect((await admin.query('SELECT name FROM customers WHERE id = 35')).rows).toEqual([{ name: demoCustomer(35).name }]);
    } finally {
      await admin.end();
    }
  });
});
