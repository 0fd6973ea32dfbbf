import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { twokey } from '../../support/cli';
import type { ClientChannel } from 'ssh2';
import { LIVE_IDLE_FLUSH_MS } from '../../../agent/sessions/idle-flushed-masking';
import { MAX_RECORDED_OUTPUT_BYTES } from '../../../agent/recording/output-cap';
import { tokenFor, waitFor } from '../../support/control-plane';
import { collect, ssh2Caller } from '../../support/ssh2-caller';
import { runClient, SSH_TEST_POLICY, startSshStack, type SshStack } from '../../support/ssh-stack';

/** The test policy with `box-typed`: the same host, every rule, block and mask of `box`, and keystrokes recorded. */
const TYPED_POLICY = SSH_TEST_POLICY.replace(
  '  - { name: box-mismatch, protocol: ssh, agent: ssh-agent }\n',
  '  - { name: box-mismatch, protocol: ssh, agent: ssh-agent }\n  - { name: box-typed, protocol: ssh, agent: ssh-agent, recording: { input: true } }\n',
).replaceAll('targets: [box', 'targets: [box-typed, box');

describe('recordings of SSH sessions', () => {
  let stack: SshStack;
  let erin: string;
  const cli = (args: string[]) => twokey([...args, '--url', stack.cp.httpUrl], { TWOKEY_TOKEN: erin });

  beforeAll(async () => {
    stack = await startSshStack({ policy: TYPED_POLICY, extraTargets: (sshd) => [{ name: 'box-typed', protocol: 'ssh', listen: { host: '127.0.0.1', port: 0 }, upstream: { host: sshd.host, port: sshd.port }, hostKey: sshd.hostKey, readLogin: sshd.readLogin, writeLogin: sshd.writeLogin }] });
    erin = await tokenFor(stack.cp, 'erin', ['auditor']);
  }, 120_000);
  afterAll(() => stack?.stop());

  const shipped = (): Promise<true> => waitFor(() => (stack.agent.context.recording.pending().sessions === 0 ? true : undefined), 20_000, 'recording shipped');

  async function onlySessionOf(user: string, target = 'box'): Promise<string> {
    // The client has gone; the agent ends the session (and its recording) a moment later.
    await waitFor(() => (stack.agent.context.sessions.count(target) === 0 ? true : undefined), 20_000, 'session ended');
    await shipped();
    // The recording's last chunk (the session's end) may still be on its way: wait until it is listed as ended.
    const deadline = Date.now() + 20_000;
    for (;;) {
      const out = await cli(['sessions', 'list', '--user', user, '--json']);
      const sessions = (JSON.parse(out.stdout) as { sessions: { sessionId: string; status: string }[] }).sessions;
      expect(sessions).toHaveLength(1);
      if (sessions[0]?.status !== 'live' || Date.now() > deadline) return sessions[0]?.sessionId ?? '';
      await shipped();
    }
  }

  it('records a shell as asciicast, masked as the caller saw it, and replays it', async () => {
    writeFileSync(join(stack.sshd.dataDir, 'creds.txt'), 'aws key AKIAIOSFODNN7EXAMPLE\n', { mode: 0o644 });
    const token = await stack.token('rita', ['support']);
    const run = await runClient(stack, 'box', 'ssh', token, (dest) => ['-tt', dest], { input: `cat ${stack.sshd.dataDir}/creds.txt; exit\n` });
    expect(run.stdout).toContain('aws key ');
    const id = await onlySessionOf('rita');
    const replay = await cli(['replay', id, '--speed', '100']);
    expect(replay.code).toBe(0);
    expect(replay.stdout).toContain('aws key ');
    expect(replay.stdout).not.toContain('AKIAIOSFODNN7EXAMPLE');
    expect(replay.stderr).toContain('allow by support: interactive shell on box');
    expect(replay.stderr).toMatch(/session ended/);
    // Keystrokes are recorded only where the policy asks.
    expect(replay.stderr).not.toContain('typed');
  });

  it('records what the caller typed into a shell where the policy records input, masked like the output', async () => {
    const token = await stack.token('ursula', ['support']);
    const run = await runClient(stack, 'box-typed', 'ssh', token, (dest) => ['-tt', dest], { input: 'echo typed-marker AKIAIOSFODNN7EXAMPLE; exit\n' });
    expect(run.code).toBe(0);
    const replay = await cli(['replay', await onlySessionOf('ursula', 'box-typed'), '--speed', '100']);
    expect(replay.code).toBe(0);
    expect(replay.stderr).toMatch(/typed echo typed-marker \S+; exit\\u000A/);
    expect(`${replay.stdout}${replay.stderr}`).not.toContain('AKIAIOSFODNN7EXAMPLE');
  });

  it('keeps a secret typed key by key out of the recording, though the shell echoes each key as it comes', async () => {
    const client = await ssh2Caller(stack, 'box-typed', await stack.token('uma', ['support']));
    try {
      const shell = await new Promise<ClientChannel>((resolve, reject) => client.shell({ term: 'dumb', rows: 24, cols: 80 }, (e, c) => (e ? reject(e) : resolve(c))));
      const done = collect(shell);
      // Slower than the caller's output masking waits (LIVE_IDLE_FLUSH_MS): each echoed key reaches the caller alone.
      for (const key of 'echo AKIAIOSFODNN7EXAMPLE\n') {
        shell.write(key);
        await new Promise((resolve) => setTimeout(resolve, 3 * LIVE_IDLE_FLUSH_MS));
      }
      shell.end('exit\n');
      expect((await done).code).toBe(0);
    } finally {
      client.end();
    }
    const replay = await cli(['replay', await onlySessionOf('uma', 'box-typed'), '--speed', '100']);
    expect(replay.code).toBe(0);
    expect(replay.stdout).toContain('echo ****');
    expect(`${replay.stdout}${replay.stderr}`).not.toContain('AKIAIOSFODNN7EXAMPLE');
  });

  it('records each SFTP request as a JSON event', async () => {
    const token = await stack.token('sam', ['support']);
    const run = await runClient(stack, 'box', 'scp', token, (dest) => [`${dest}:${stack.sshd.dataDir}/creds.txt`, '/dev/null']);
    expect(run.code).toBe(0);
    const replay = await cli(['replay', await onlySessionOf('sam')]);
    expect(replay.stdout).toContain(`sftp open ${stack.sshd.dataDir}/creds.txt`);
    expect(replay.stdout).toContain('-- read, allow by rule support');
  });

  it('records a command line with the secret it carries masked', async () => {
    const token = await stack.token('tom', ['support']);
    const run = await runClient(stack, 'box', 'ssh', token, (dest) => [dest, 'echo AKIAIOSFODNN7EXAMPLE']);
    expect(run.code).toBe(0);
    const replay = await cli(['replay', await onlySessionOf('tom')]);
    expect(`${replay.stdout}${replay.stderr}`).not.toContain('AKIAIOSFODNN7EXAMPLE');
    expect(replay.stderr).toMatch(/allow by support: echo \S+/);
  });

  it('records a channel\'s output up to its cap and notes how much more there was', async () => {
    const token = await stack.token('loader', []);
    const run = await runClient(stack, 'box', 'ssh', token, (dest) => [dest, 'yes | head -c 3000000']);
    expect(run.stdout).toHaveLength(3_000_000);
    const replay = await cli(['replay', await onlySessionOf('loader')]);
    expect(replay.stdout.length).toBe(MAX_RECORDED_OUTPUT_BYTES);
    expect(replay.stderr).toContain(`${3_000_000 - MAX_RECORDED_OUTPUT_BYTES} more bytes of output not recorded`);
  });
});
