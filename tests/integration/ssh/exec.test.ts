import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { postDecision, waitForMail } from '../../support/outbox';
import { runClient, startSshStack, type SshStack } from '../../support/ssh-stack';

describe('ssh exec through the agent (real ssh client, real sshd)', () => {
  let stack: SshStack;

  beforeAll(async () => {
    stack = await startSshStack();
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('runs an allowed write on the write login and passes stdout, stderr and the exit status back', async () => {
    const token = await stack.token('loader', []);
    const run = await runClient(stack, 'box', 'ssh', token, (dest) => [dest, 'id -un; echo oops >&2; exit 3']);
    expect(run).toEqual({ code: 3, stdout: 'twokey-write\n', stderr: 'oops\n' });
  });

  it('agrees on AES-GCM with OpenSSH, whose own list puts chacha20-poly1305 first, and refuses a caller with no AES-GCM', async () => {
    const token = await stack.token('alice', ['support']);
    const run = await runClient(stack, 'box', 'ssh', token, (dest) => [dest, 'true'], { extraOptions: ['-o', 'LogLevel=DEBUG1'] });
    expect(run.code).toBe(0);
    expect(run.stderr).toContain('kex: server->client cipher: aes128-gcm@openssh.com');
    const chachaOnly = await runClient(stack, 'box', 'ssh', token, (dest) => [dest, 'true'], { extraOptions: ['-o', 'LogLevel=INFO', '-c', 'chacha20-poly1305@openssh.com'] });
    expect(chachaOnly.code).toBe(255);
    expect(chachaOnly.stderr).toMatch(/no matching cipher found/);
  });

  it('runs a read on the read login with the caller\'s stdin', async () => {
    const token = await stack.token('alice', ['support']);
    const run = await runClient(stack, 'box', 'ssh', token, (dest) => [dest, 'id -un; cat'], { input: 'from stdin\n' });
    expect(run).toEqual({ code: 0, stdout: 'twokey-read\nfrom stdin\n', stderr: '' });
  });

  // Split across packets with a pause under the idle flush: tests/unit/ssh/output-relay.test.ts (here a
  // pause would be a process start, which a loaded machine can stretch past the flush).
  it('masks a secret that the target prints in two writes', async () => {
    const token = await stack.token('alice', ['support']);
    const run = await runClient(stack, 'box', 'ssh', token, (dest) => [dest, "printf 'key AKIAIOSF'; printf 'ODNN7EXAMPLE mail ann@example.com\\n'"]);
    expect(run.code).toBe(0);
    expect(run.stdout).not.toContain('AKIAIOSFODNN7EXAMPLE');
    expect(run.stdout).not.toContain('ann@example.com');
    expect(run.stdout).toMatch(/^key \S+ mail \S+\n$/);
  });

  it('refuses a caller whose token does not verify', async () => {
    const run = await runClient(stack, 'box', 'ssh', 'not-a-token', (dest) => [dest, 'true']);
    // sshpass's status for a password the server refused.
    expect(run.code).toBe(5);
  });

  it('refuses a write the policy denies with the reason on stderr and exit status 126', async () => {
    const token = await stack.token('ann', ['analyst']);
    const run = await runClient(stack, 'box', 'ssh', token, (dest) => [dest, `touch ${join(stack.sshd.dataDir, 'analyst-was-here')}`]);
    expect(run.code).toBe(126);
    expect(run.stderr).toBe('twokey: write denied by rule analysts\n');
    expect(existsSync(join(stack.sshd.dataDir, 'analyst-was-here'))).toBe(false);
  });

  it('refuses a command a block names', async () => {
    const token = await stack.token('loader', []);
    const run = await runClient(stack, 'box', 'ssh', token, (dest) => [dest, 'rm -rf /tmp/nothing-here']);
    expect(run.code).toBe(126);
    expect(run.stderr).toBe('twokey: blocked by no-wipe (rm -rf /tmp/nothing-here)\n');
  });

  it('holds a write until a reviewer approves it, then runs it once on the write login', async () => {
    const token = await stack.token('alice', ['support']);
    const file = join(stack.sshd.dataDir, 'approved-note');
    const running = runClient(stack, 'box', 'ssh', token, (dest) => [dest, `echo approved > ${file} && id -un`]);
    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', file);
    expect(existsSync(file)).toBe(false);
    expect((await postDecision(mail.link, mail.token, 'approve')).status).toBe(200);
    const run = await running;
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('twokey-write\n');
    expect(run.stderr).toMatch(/^twokey: approval required, request [0-9a-f-]{36}, sent to dba, waiting up to 60s\ntwokey: request [0-9a-f-]{36} approved by bob@example.com; running it once on the write credential\n/);
    expect(readFileSync(file, 'utf8')).toBe('approved\n');
  });

  it('refuses a held write the reviewer denies, with the reviewer and comment on stderr', async () => {
    const token = await stack.token('alice', ['support']);
    const file = join(stack.sshd.dataDir, 'denied-note');
    const running = runClient(stack, 'box', 'ssh', token, (dest) => [dest, `touch ${file}`]);
    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', file);
    expect((await postDecision(mail.link, mail.token, 'deny', 'not today')).status).toBe(200);
    const run = await running;
    expect(run.code).toBe(126);
    expect(run.stderr).toMatch(/\ntwokey: request [0-9a-f-]{36} denied by bob@example.com: not today\n$/);
    expect(existsSync(file)).toBe(false);
  });
});
