import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClientChannel } from 'ssh2';
import { waitFor } from '../../support/control-plane';
import { postDecision, waitForMail } from '../../support/outbox';
import { collect, ssh2Caller } from '../../support/ssh2-caller';
import { runClient, startSshStack, type SshStack } from '../../support/ssh-stack';

describe('ssh shells, terminals and sessions through the agent', () => {
  let stack: SshStack;

  beforeAll(async () => {
    stack = await startSshStack({
      extraTargets: (sshd) => [
        {
          name: 'box-mismatch',
          protocol: 'ssh',
          listen: { host: '127.0.0.1', port: 0 },
          upstream: { host: sshd.host, port: sshd.port },
          hostKey: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
          readLogin: sshd.readLogin,
          writeLogin: sshd.writeLogin,
        },
      ],
    });
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('opens an allowed interactive shell with a pty on the read login', async () => {
    const token = await stack.token('alice', ['support']);
    const run = await runClient(stack, 'box', 'ssh', token, (dest) => ['-tt', dest], { input: 'id -un; tty | grep -c /dev/pts; exit 7\n' });
    expect(run.code).toBe(7);
    expect(run.stdout).toMatch(/twokey-read\r\n1\r\n/);
  });

  it('refuses an interactive shell the policy denies', async () => {
    const token = await stack.token('ann', ['analyst']);
    const run = await runClient(stack, 'box', 'ssh', token, (dest) => ['-tt', dest], { input: 'exit\n' });
    expect(run.code).toBe(126);
    expect(run.stderr).toContain('twokey: shell denied by rule analysts');
  });

  it('holds a shell that needs approval, then opens it on the write login inside the approved window', async () => {
    const token = await stack.token('olga', ['ops']);
    let held = false;
    let approve: (input: string) => void = () => undefined;
    const running = runClient(stack, 'box', 'ssh', token, (dest) => ['-tt', dest], {
      input: new Promise<string>((resolve) => (approve = resolve)),
      onStderr: (text) => (held ||= text.includes('approval required')),
    });
    await waitFor(() => held, 20_000, 'the approval notice');
    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', 'write window on box');
    expect((await postDecision(mail.link, mail.token, 'approve')).status).toBe(200);
    approve('id -un; exit\n');
    const run = await running;
    expect(run.stderr).toMatch(/twokey: request [0-9a-f-]{36} approved by bob@example.com; writes on box run on the write credential until /);
    expect(run.stdout).toMatch(/twokey-write\r\n/);
    // The window is open now: a second shell of the same caller runs at once, on the write login.
    const again = await runClient(stack, 'box', 'ssh', token, (dest) => ['-tt', dest], { input: 'id -un; exit\n' });
    expect(again.stderr).not.toContain('approval required');
    expect(again.stdout).toMatch(/twokey-write\r\n/);
  });

  it('passes window changes to the target', async () => {
    const client = await ssh2Caller(stack, 'box', await stack.token('alice', ['support']));
    const shell = await new Promise<ClientChannel>((resolve, reject) => client.shell({ rows: 24, cols: 80, term: 'xterm' }, (e, s) => (e ? reject(e) : resolve(s))));
    const done = collect(shell);
    shell.setWindow(50, 132, 0, 0);
    shell.write('sleep 0.3; stty size; exit\n');
    const { stdout } = await done;
    client.end();
    expect(stdout).toContain('50 132');
  });

  it('passes a signal the command died of back as an exit signal', async () => {
    const client = await ssh2Caller(stack, 'box', await stack.token('loader', []));
    const exec = await new Promise<ClientChannel>((resolve, reject) => client.exec('kill -TERM $$', (e, s) => (e ? reject(e) : resolve(s))));
    const result = await collect(exec);
    client.end();
    expect(result.signal).toBe('SIGTERM');
  });

  it('refuses a target whose host key is not the pinned one', async () => {
    const token = await stack.token('alice', ['support']);
    const run = await runClient(stack, 'box-mismatch', 'ssh', token, (dest) => [dest, 'id -un']);
    expect(run.code).toBe(255);
    expect(run.stderr).toBe('twokey: the host key of box-mismatch does not match the pinned SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n');
    expect(run.stdout).toBe('');
  });

  it('lets a session outlive its token, and refuses a new session with the expired token', async () => {
    // Expired 25 s ago: within the verifier's 30 s clock skew now, beyond it a few seconds later.
    const token = await stack.token('alice', ['support'], { ttlSeconds: -25 });
    const run = await runClient(stack, 'box', 'ssh', token, (dest) => [dest, 'sleep 7; echo still here']);
    expect(run).toEqual({ code: 0, stdout: 'still here\n', stderr: '' });
    const again = await runClient(stack, 'box', 'ssh', token, (dest) => [dest, 'echo no']);
    expect(again.code).toBe(5);
  });

  it('refuses agent forwarding with a reason, and runs the command', async () => {
    const token = await stack.token('alice', ['support']);
    const socket = join(mkdtempSync(join(tmpdir(), 'tk-agent-')), 'agent.sock');
    const sshAgent = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
    try {
      await waitFor(() => existsSync(socket), 10_000, 'ssh-agent');
      const run = await runClient(stack, 'box', 'ssh', token, (dest) => ['-A', dest, 'echo ran'], { env: { SSH_AUTH_SOCK: socket } });
      expect(run.stdout).toBe('ran\n');
      expect(run.stderr).toBe('twokey: agent forwarding is refused (your keys stay on your machine)\n');
    } finally {
      sshAgent.kill();
    }
  });
});
