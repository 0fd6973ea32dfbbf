import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import type { SFTPWrapper } from 'ssh2';
import { waitFor } from '../../support/control-plane';
import { postDecision, waitForMail } from '../../support/outbox';
import { ssh2Caller } from '../../support/ssh2-caller';
import { runClient, startSshStack, type SshStack } from '../../support/ssh-stack';

describe('sftp and scp through the agent, judged per SFTP request', () => {
  let stack: SshStack;
  let local: string;

  beforeAll(async () => {
    stack = await startSshStack();
    local = mkdtempSync(join(tmpdir(), 'tk-sftp-local-'));
    writeFileSync(join(stack.sshd.dataDir, 'report.txt'), 'line one\nline two\n', { mode: 0o644 });
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });

  const batch = (name: string, lines: string[]): string => {
    const file = join(local, name);
    writeFileSync(file, `${lines.join('\n')}\n`);
    return file;
  };

  it('downloads with sftp and scp on the read login', async () => {
    const token = await stack.token('alice', ['support']);
    const viaSftp = await runClient(stack, 'box', 'sftp', token, (dest) => ['-b', batch('get.batch', [`get ${stack.sshd.dataDir}/report.txt ${local}/via-sftp.txt`]), dest]);
    expect(viaSftp.code).toBe(0);
    const viaScp = await runClient(stack, 'box', 'scp', token, (dest) => [`${dest}:${stack.sshd.dataDir}/report.txt`, `${local}/via-scp.txt`]);
    expect(viaScp.code).toBe(0);
    expect(readFileSync(join(local, 'via-sftp.txt'), 'utf8')).toBe('line one\nline two\n');
    expect(readFileSync(join(local, 'via-scp.txt'), 'utf8')).toBe('line one\nline two\n');
  });

  it('lists a directory with ls -l, owners by name: the id lists of users-groups-by-id are not taken for a path', async () => {
    const token = await stack.token('alice', ['support']);
    const run = await runClient(stack, 'box', 'sftp', token, (dest) => ['-b', batch('ls.batch', [`ls -l ${stack.sshd.dataDir}/report.txt`]), dest]);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toMatch(new RegExp(`\\s${userInfo().username}\\s.*report\\.txt`));
  });

  it('holds an scp upload until a reviewer who saw its size, SHA-256 and first lines approves it, then writes it on the write login', async () => {
    const token = await stack.token('alice', ['support']);
    const content = 'first line of the upload\nsecond line\n';
    writeFileSync(join(local, 'upload.txt'), content);
    const remote = join(stack.sshd.dataDir, 'uploaded.txt');
    const running = runClient(stack, 'box', 'scp', token, (dest) => [join(local, 'upload.txt'), `${dest}:${remote}`]);
    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', remote);
    expect(mail.text).toContain(`size: ${Buffer.byteLength(content)} bytes`);
    expect(mail.text).toContain(`sha256: ${createHash('sha256').update(content).digest('hex')}`);
    expect(mail.text).toContain('first line of the upload');
    expect(existsSync(remote)).toBe(false);
    expect((await postDecision(mail.link, mail.token, 'approve')).status).toBe(200);
    const run = await running;
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/^twokey: approval required, request [0-9a-f-]{36}, sent to dba, waiting up to 60s\n/);
    expect(readFileSync(remote, 'utf8')).toBe(content);
    expect(statSync(remote).uid).toBe(statSync(stack.sshd.dataDir).uid);
  });

  it('leaves no file behind when the reviewer denies an sftp upload', async () => {
    const token = await stack.token('alice', ['support']);
    writeFileSync(join(local, 'nope.txt'), 'never\n');
    const remote = join(stack.sshd.dataDir, 'nope.txt');
    const running = runClient(stack, 'box', 'sftp', token, (dest) => ['-b', batch('put.batch', [`put ${local}/nope.txt ${remote}`]), dest]);
    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', remote);
    expect((await postDecision(mail.link, mail.token, 'deny')).status).toBe(200);
    const run = await running;
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/twokey: request [0-9a-f-]{36} denied by bob@example.com/);
    expect(existsSync(remote)).toBe(false);
  });

  it('refuses an upload the policy denies at its open, with the reason on stderr', async () => {
    const token = await stack.token('ann', ['analyst']);
    writeFileSync(join(local, 'ann.txt'), 'ann\n');
    const run = await runClient(stack, 'box', 'scp', token, (dest) => [join(local, 'ann.txt'), `${dest}:${stack.sshd.dataDir}/ann.txt`]);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('twokey: write denied by rule analysts');
    expect(existsSync(join(stack.sshd.dataDir, 'ann.txt'))).toBe(false);
  });

  it('holds an sftp remove, runs it once approved', async () => {
    const token = await stack.token('alice', ['support']);
    const victim = join(stack.sshd.dataDir, 'old.log');
    writeFileSync(victim, 'old\n', { mode: 0o644 });
    const running = runClient(stack, 'box', 'sftp', token, (dest) => ['-b', batch('rm.batch', [`rm ${victim}`]), dest]);
    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', `sftp remove ${victim}`);
    expect(existsSync(victim)).toBe(true);
    expect((await postDecision(mail.link, mail.token, 'approve')).status).toBe(200);
    expect((await running).code).toBe(0);
    await waitFor(() => !existsSync(victim), 5_000, 'the file removed');
  });

  it('lets an allowed writer upload without approval', async () => {
    const token = await stack.token('loader', []);
    writeFileSync(join(local, 'load.csv'), 'a,b\n1,2\n');
    const run = await runClient(stack, 'box', 'scp', token, (dest) => [join(local, 'load.csv'), `${dest}:${stack.sshd.dataDir}/load.csv`]);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(readFileSync(join(stack.sshd.dataDir, 'load.csv'), 'utf8')).toBe('a,b\n1,2\n');
  });

  it("streams a download byte for byte, with the agent's own replies to requests sent in between", async () => {
    // Reads larger than an SSH packet, so that the target's DATA replies span packets, with requests
    // the agent answers itself (an unknown handle) sent in between.
    const content = randomBytes(4 * 1024 * 1024);
    writeFileSync(join(stack.sshd.dataDir, 'stream.bin'), content, { mode: 0o644 });
    const client = await ssh2Caller(stack, 'box', await stack.token('loader', []));
    try {
      const sftp = await new Promise<SFTPWrapper>((resolve, reject) => client.sftp((e, s) => (e ? reject(e) : resolve(s))));
      const handle = await new Promise<Buffer>((resolve, reject) => sftp.open(join(stack.sshd.dataDir, 'stream.bin'), 'r', (e, h) => (e ? reject(e) : resolve(h))));
      const READ_BYTES = 60 * 1024;
      const IN_FLIGHT = 64;
      const parts: Buffer[] = [];
      const refusals: Promise<string>[] = [];
      // Each read's reply sends the next read and a refused request, while the other reads' replies stream.
      const readFrom = (offset: number): Promise<void> => {
        if (offset >= content.length) return Promise.resolve();
        const length = Math.min(READ_BYTES, content.length - offset);
        return new Promise<Buffer>((resolve, reject) => sftp.read(handle, Buffer.alloc(length), 0, length, offset, (e, n, buf) => (e ? reject(e) : resolve(buf.subarray(0, n))))).then((part) => {
          parts[offset / READ_BYTES] = part;
          refusals.push(new Promise((resolve) => sftp.fstat(Buffer.from('not-a-handle'), (e) => resolve(e ? e.message : 'answered'))));
          return readFrom(offset + IN_FLIGHT * READ_BYTES);
        });
      };
      await Promise.all(Array.from({ length: IN_FLIGHT }, (_, i) => readFrom(i * READ_BYTES)));
      expect(Buffer.concat(parts).equals(content)).toBe(true);
      expect(new Set(await Promise.all(refusals))).toEqual(new Set(['twokey: no such handle']));
    } finally {
      client.end();
    }
  }, 60_000);
});
