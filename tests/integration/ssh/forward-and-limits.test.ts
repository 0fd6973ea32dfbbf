import { spawn } from 'node:child_process';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { freePort } from '../../../local/free-port';
import { waitFor } from '../../support/control-plane';
import { runClient, startSshStack, type SshStack } from '../../support/ssh-stack';

/** Sends `text` to host:port and returns what came back before the peer closed (or '' when refused). */
function exchange(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const socket: Socket = connect({ host: '127.0.0.1', port }, () => socket.end(text));
    socket.on('data', (c: Buffer) => (got += c.toString('utf8')));
    socket.on('error', () => resolve(got));
    socket.on('close', () => resolve(got));
  });
}

describe('ssh port forwarding, concurrency and malformed input through the agent', () => {
  let stack: SshStack;
  let echo: Server;
  let echoPort: number;

  beforeAll(async () => {
    stack = await startSshStack();
    echo = createServer((s) => s.pipe(s));
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', () => resolve()));
    echoPort = (echo.address() as { port: number }).port;
  }, 120_000);
  afterAll(async () => {
    await new Promise((r) => echo?.close(r));
    await stack?.stop();
  });

  /** Runs `ssh -N -L` for the test's body; resolves with what ssh printed on stderr after it is stopped. */
  async function withForward(token: string, destination: string, body: (localPort: number) => Promise<void>): Promise<string> {
    const localPort = await freePort('127.0.0.1');
    let stderr = '';
    const knownHosts = await stack.knownHosts('box');
    const { port } = stack.endpoint('box');
    const child = spawn('sshpass', ['-e', 'ssh', '-N', '-p', String(port), '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'PubkeyAuthentication=no', '-L', `127.0.0.1:${localPort}:${destination}`, 'caller@127.0.0.1'], {
      env: { ...process.env, SSHPASS: token },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    try {
      await waitFor(() => new Promise<boolean>((resolve) => connect({ host: '127.0.0.1', port: localPort }).once('connect', function (this: Socket) { this.destroy(); resolve(true); }).once('error', () => resolve(false))), 20_000, 'the local forward');
      await body(localPort);
    } finally {
      const exited = new Promise((r) => child.once('close', r));
      child.kill();
      await exited;
    }
    return stderr;
  }

  it('forwards -L to a destination a rule names', async () => {
    const token = await stack.token('alice', ['support']);
    await withForward(token, `127.0.0.1:${echoPort}`, async (localPort) => {
      expect(await exchange(localPort, 'ping through the agent')).toBe('ping through the agent');
    });
  });

  it('refuses -L to a destination no rule names', async () => {
    const token = await stack.token('alice', ['support']);
    const stderr = await withForward(token, `localhost:${echoPort}`, async (localPort) => {
      expect(await exchange(localPort, 'ping')).toBe('');
    });
    expect(stderr).toMatch(/channel \d+: open failed/);
  });

  it('serves 50 concurrent sessions', async () => {
    const token = await stack.token('alice', ['support']);
    const runs = await Promise.all(Array.from({ length: 50 }, (_, i) => runClient(stack, 'box', 'ssh', token, (dest) => [dest, `echo session ${i}`])));
    expect(runs.map((r) => r.stdout)).toEqual(Array.from({ length: 50 }, (_, i) => `session ${i}\n`));
    expect(runs.filter((r) => r.code !== 0)).toEqual([]);
  }, 120_000);

  it('drops garbage instead of an SSH greeting and keeps serving others', async () => {
    const { port } = stack.endpoint('box');
    const garbage = connect({ host: '127.0.0.1', port });
    await new Promise((r) => garbage.once('connect', r));
    // The agent closes while bytes are still unread: the reset that follows is expected.
    garbage.on('error', () => undefined);
    // Read what comes (the agent's ident, then its end), or the socket never sees the close.
    garbage.resume();
    garbage.write(Buffer.alloc(70_000, 0x41));
    await new Promise((r) => garbage.once('close', r));

    const run = await runClient(stack, 'box', 'ssh', await stack.token('alice', ['support']), (dest) => [dest, 'echo still serving']);
    expect(run.stdout).toBe('still serving\n');
  });
});
