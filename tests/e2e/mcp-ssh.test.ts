import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { MAX_TRACKED_RESULT_BYTES } from '../../agent/mcp/held-executions';
import { MAX_SSH_STDIN_BYTES } from '../../agent/mcp/ssh/toolset';
import { SSH_TEST_POLICY, startSshStack, targetConnections, type SshStack } from '../support/ssh-stack';
import { waitFor } from '../support/control-plane';
import { callTool, McpCallers } from '../support/mcp-client';
import { postDecision, waitForMail } from '../support/outbox';

// The SSH test policy, with every MCP write on box-mcp held for review even for callers who may write freely.
const POLICY = `${SSH_TEST_POLICY.replace('  - { name: box-mismatch, protocol: ssh, agent: ssh-agent }', '  - { name: box-mismatch, protocol: ssh, agent: ssh-agent }\n  - { name: box-mcp, protocol: ssh, agent: ssh-agent, mcpWrites: { approve: { groups: [dba], timeoutSeconds: 60 } } }').replace('    targets: [box]\n    subjects: { users: [loader] }', '    targets: [box, box-mcp]\n    subjects: { users: [loader] }')}`;

describe('ssh_exec through the MCP endpoint (official SDK client, real sshd)', () => {
  let stack: SshStack;
  let callers: McpCallers;
  const connect = (user: string, groups: string[], name?: string): Promise<Client> => callers.connect(user, groups, name);

  beforeAll(async () => {
    stack = await startSshStack({
      policy: POLICY,
      mcp: true,
      extraTargets: (sshd) => [{ name: 'box-mcp', protocol: 'ssh', listen: { host: '127.0.0.1', port: 0 }, upstream: { host: sshd.host, port: sshd.port }, hostKey: sshd.hostKey, readLogin: sshd.readLogin, writeLogin: sshd.writeLogin }],
    });
    callers = new McpCallers(stack);
  }, 120_000);
  afterAll(async () => {
    await callers?.closeAll();
    await stack?.stop();
  });

  const sshTargets = async (client: Client): Promise<string[]> => {
    const { tools } = await client.listTools();
    const exec = tools.find((t) => t.name === 'ssh_exec');
    return ((exec?.inputSchema.properties as Record<string, { enum?: string[] }> | undefined)?.target?.enum ?? []).slice().sort();
  };

  it('lists ssh_exec only on the targets where the policy lets the caller do something over SSH', async () => {
    expect(await sshTargets(await connect('alice', ['support']))).toEqual(['box']);
    expect(await sshTargets(await connect('loader', []))).toEqual(['box', 'box-mcp']);
    const stranger = await connect('mallory', ['nobody']);
    expect(await sshTargets(stranger)).toEqual([]);
    const refused = await callTool(stranger, 'ssh_exec', { target: 'box', command: 'id -un' });
    expect(refused).toMatchObject({ isError: true, text: 'twokey: ssh_exec is not available to you on target box' });
  });

  it('runs a read on the read login with stdin, masked as ssh shows it', async () => {
    const alice = await connect('alice', ['support']);
    const read = await callTool(alice, 'ssh_exec', { target: 'box', command: 'id -un; cat; echo oops >&2', stdin: 'key AKIAIOSFODNN7EXAMPLE\n' });
    expect(read.isError).toBe(false);
    expect(read.json).toMatchObject({ status: 'done', exit_code: 0, signal: null, stderr: 'oops\n', truncated: false });
    expect(read.json.stdout).toMatch(/^twokey-read\nkey \S+\n$/);
    expect(read.json.stdout).not.toContain('AKIAIOSFODNN7EXAMPLE');
  });

  it('passes a command\'s exit status and flags output beyond the cap as truncated', async () => {
    const alice = await connect('alice', ['support']);
    const big = await callTool(alice, 'ssh_exec', { target: 'box', command: 'head -c 1200000 /dev/zero | tr "\\0" x; ls /no-such-dir' });
    expect(big.json).toMatchObject({ status: 'done', exit_code: 2, truncated: true });
    expect(big.json.stderr).toContain('/no-such-dir');
    expect(big.json.stdout.length).toBe(1024 * 1024);
  });

  it('refuses a write the policy denies with the listener\'s reason, and stdin over the cap before connecting', async () => {
    const ann = await connect('ann', ['analyst']);
    const file = join(stack.sshd.dataDir, 'mcp-analyst');
    const denied = await callTool(ann, 'ssh_exec', { target: 'box', command: `touch ${file}` });
    expect(denied.isError).toBe(true);
    expect(denied.text).toMatch(/^twokey: /);
    expect(existsSync(file)).toBe(false);
    const oversized = await callTool(ann, 'ssh_exec', { target: 'box', command: 'cat', stdin: 'x'.repeat(MAX_SSH_STDIN_BYTES + 1) });
    expect(oversized).toMatchObject({ isError: true, text: `twokey: invalid arguments: stdin: at most ${MAX_SSH_STDIN_BYTES} bytes` });
  });

  it('holds a write, says it came from an AI agent through MCP, runs it once approved from the mailed link, and leaves no write login connected', async () => {
    const alice = await connect('alice', ['support'], 'claude-code');
    const file = join(stack.sshd.dataDir, 'mcp-approved');
    const held = await callTool(alice, 'ssh_exec', { target: 'box', command: `echo approved > ${file} && id -un` });
    expect(held.json).toMatchObject({ status: 'pending_approval', reviewers: ['dba'] });
    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', file);
    expect(mail.text).toContain('Sent by: an AI agent through MCP (client: claude-code 1.0.0)');
    expect(existsSync(file)).toBe(false);
    expect((await postDecision(mail.link, mail.token, 'approve')).status).toBe(200);
    const done = await waitFor(
      async () => {
        const s = await callTool(alice, 'ssh_request_status', { target: 'box', request_id: held.json.request_id });
        return s.json?.status === 'approved' ? s.json : undefined;
      },
      30_000,
      'approved',
    );
    expect(done.result).toMatchObject({ exit_code: 0, stdout: 'twokey-write\n' });
    expect(readFileSync(file, 'utf8')).toBe('approved\n');
    // The MCP call's connection to the listener has ended, and the write login's connection with it.
    await waitFor(() => targetConnections(stack) === 0 || undefined, 10_000, 'no connection to sshd');
  });

  it('keeps of an approved command\'s output at most MAX_TRACKED_RESULT_BYTES for ssh_request_status, while the waiting call gets it all', async () => {
    const alice = await connect('alice', ['support']);
    const file = join(stack.sshd.dataDir, 'mcp-big-output');
    const call = callTool(alice, 'ssh_exec', { target: 'box', command: `touch ${file} && seq 1 100000`, wait_seconds: 45 });
    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', file);
    expect((await postDecision(mail.link, mail.token, 'approve')).status).toBe(200);
    const done = await call;
    expect(done.json).toMatchObject({ status: 'approved', exit_code: 0, truncated: false });
    expect(done.json.stdout).toHaveLength(588_895);
    const status = await callTool(alice, 'ssh_request_status', { target: 'box', request_id: done.json.request_id });
    expect(status.json.result).toMatchObject({ exit_code: 0, truncated: true });
    expect(status.json.result.stdout).toHaveLength(MAX_TRACKED_RESULT_BYTES / 2);
    expect((status.json.result.stdout as string).startsWith('1\n2\n3\n')).toBe(true);
  });

  it('returns a denied write as a tool error with the reviewer\'s comment when it waits for the decision', async () => {
    const alice = await connect('alice', ['support']);
    const file = join(stack.sshd.dataDir, 'mcp-denied');
    const call = callTool(alice, 'ssh_exec', { target: 'box', command: `touch ${file}`, wait_seconds: 40 });
    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', file);
    expect((await postDecision(mail.link, mail.token, 'deny', 'not today')).status).toBe(200);
    const denied = await call;
    expect(denied.isError).toBe(true);
    expect(denied.text).toMatch(/^twokey: request [0-9a-f-]{36} denied by bob@example.com: not today$/);
    expect(existsSync(file)).toBe(false);
  });

  it('holds an MCP write where the target\'s mcpWrites asks for review, though the caller may write freely over ssh', async () => {
    const loader = await connect('loader', []);
    const file = join(stack.sshd.dataDir, 'mcp-loader');
    const held = await callTool(loader, 'ssh_exec', { target: 'box-mcp', command: `touch ${file}` });
    expect(held.json).toMatchObject({ status: 'pending_approval' });
    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', file);
    expect(mail.text).toContain('(rule mcpWrites)');
    expect(existsSync(file)).toBe(false);
    await postDecision(mail.link, mail.token, 'deny');
  });
});
