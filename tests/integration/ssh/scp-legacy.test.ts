import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClientChannel } from 'ssh2';
import { HeldUpload, MAX_HELD_UPLOAD_BYTES } from '../../../agent/ssh/sftp/held-upload';
import { getRuntime } from '../../../lambdas/shared/runtime';
import { waitFor } from '../../support/control-plane';
import { postDecision, readOutbox, waitForMail, type OutboxMail } from '../../support/outbox';
import { collect, ssh2Caller } from '../../support/ssh2-caller';
import { runClient, startSshStack, type SshStack } from '../../support/ssh-stack';

/** `scp -O`: the legacy scp protocol, where the client runs `scp -t` (upload) or `scp -f` (download) on the target. */
describe('legacy scp (scp -O) through the agent', () => {
  let stack: SshStack;
  let local: string;
  const scp = (user: string, groups: string[], args: (dest: string) => string[]) =>
    stack.token(user, groups).then((token) => runClient(stack, 'box', 'scp', token, args, { extraOptions: ['-O'] }));

  beforeAll(async () => {
    stack = await startSshStack();
    local = mkdtempSync(join(tmpdir(), 'tk-scp-local-'));
    writeFileSync(join(stack.sshd.dataDir, 'report.txt'), 'line one\nline two\n', { mode: 0o644 });
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('downloads with scp -O on the read login', async () => {
    const run = await scp('alice', ['support'], (dest) => [`${dest}:${stack.sshd.dataDir}/report.txt`, join(local, 'report.txt')]);
    expect(run.code).toBe(0);
    expect(readFileSync(join(local, 'report.txt'), 'utf8')).toBe('line one\nline two\n');
  });

  it('holds an scp -O upload until a reviewer who saw its size, SHA-256 and first lines approves it, then writes those bytes on the write login', async () => {
    const content = 'legacy first line\nsecond line\n';
    writeFileSync(join(local, 'legacy.txt'), content, { mode: 0o640 });
    const remote = join(stack.sshd.dataDir, 'legacy.txt');
    const running = scp('alice', ['support'], (dest) => [join(local, 'legacy.txt'), `${dest}:${remote}`]);
    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', `scp upload ${remote}`);
    expect(mail.text).toContain(`scp upload ${remote} mode 640`);
    expect(mail.text).toContain(`size: ${Buffer.byteLength(content)} bytes`);
    expect(mail.text).toContain(`sha256: ${createHash('sha256').update(content).digest('hex')}`);
    expect(mail.text).toContain('legacy first line');
    expect(existsSync(remote)).toBe(false);
    expect((await postDecision(mail.link, mail.token, 'approve')).status).toBe(200);
    const run = await running;
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/twokey: approval required, request [0-9a-f-]{36}/);
    expect(readFileSync(remote, 'utf8')).toBe(content);
    expect(statSync(remote).uid).toBe(statSync(stack.sshd.dataDir).uid);
    expect(statSync(remote).mode & 0o777).toBe(0o640);
  });

  it('leaves no file behind when the reviewer denies an scp -O upload', async () => {
    writeFileSync(join(local, 'denied.txt'), 'never\n');
    const remote = join(stack.sshd.dataDir, 'denied.txt');
    const running = scp('alice', ['support'], (dest) => [join(local, 'denied.txt'), `${dest}:${remote}`]);
    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', `scp upload ${remote}`);
    expect((await postDecision(mail.link, mail.token, 'deny')).status).toBe(200);
    const run = await running;
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/twokey: request [0-9a-f-]{36} denied by bob@example.com/);
    expect(existsSync(remote)).toBe(false);
  });

  it('refuses a file larger than an approval can hold before its bytes are sent', async () => {
    const big = join(local, 'big.bin');
    writeFileSync(big, '');
    truncateSync(big, MAX_HELD_UPLOAD_BYTES + 1);
    const remote = join(stack.sshd.dataDir, 'big.bin');
    const run = await scp('loader', [], (dest) => [big, `${dest}:${remote}`]);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain(`twokey: ${remote} is larger than an approval can hold`);
    expect(existsSync(remote)).toBe(false);
  });

  it('writes a directory sent with scp -O -r once each new directory and each file is approved', async () => {
    const tree = join(local, 'tree');
    mkdirSync(join(tree, 'sub'), { recursive: true });
    writeFileSync(join(tree, 'a.txt'), 'alpha\n');
    writeFileSync(join(tree, 'sub', 'b.txt'), 'beta\n');
    const remote = join(stack.sshd.dataDir, 'tree');
    const running = scp('alice', ['support'], (dest) => ['-r', tree, `${dest}:${stack.sshd.dataDir}/`]);
    // scp sends a directory's files in readdir order: the order of the two middle requests is the file system's.
    const asked = [`scp mkdir ${remote} mode`, `scp upload ${remote}/a.txt`, `scp mkdir ${remote}/sub mode`, `scp upload ${remote}/sub/b.txt`];
    const reviewed: string[] = [];
    while (reviewed.length < asked.length) {
      const pending = (m: OutboxMail): string | undefined => asked.find((text) => m.text.includes(text) && !reviewed.includes(text));
      const mail = await waitFor(() => readOutbox(stack.cp.outboxDir).find((m) => m.to === 'bob@example.com' && pending(m)), 15_000, 'the next request of the upload');
      reviewed.push(pending(mail) as string);
      expect((await postDecision(mail.link, mail.token, 'approve')).status).toBe(200);
    }
    expect(reviewed[0]).toBe(asked[0]);
    const run = await running;
    expect(run.code).toBe(0);
    expect(readFileSync(join(remote, 'a.txt'), 'utf8')).toBe('alpha\n');
    expect(readFileSync(join(remote, 'sub', 'b.txt'), 'utf8')).toBe('beta\n');
    expect(statSync(join(remote, 'sub')).uid).toBe(statSync(stack.sshd.dataDir).uid);
  });

  it('refuses an upload the policy denies before any byte, with the reason', async () => {
    writeFileSync(join(local, 'ann.txt'), 'ann\n');
    const run = await scp('ann', ['analyst'], (dest) => [join(local, 'ann.txt'), `${dest}:${stack.sshd.dataDir}/ann.txt`]);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('twokey: write denied by rule analysts');
    expect(existsSync(join(stack.sshd.dataDir, 'ann.txt'))).toBe(false);
  });

  it.each([
    ['a record it does not understand', 'X marks the spot\n', 'an scp record it does not understand'],
    ['more bytes than the file declared', 'C0644 2 extra.txt\nabcdef\0', 'a file not followed by its zero byte'],
    ['a record with no end', `C0644 1 ${'n'.repeat(4096)}`, 'an scp record longer than'],
    ['a name that climbs out', 'C0644 2 ..\nab\0', 'unsafe name'],
  ])('answers a raw caller that sends %s with an scp error line, writes nothing, and goes on serving', async (_label, stream, message) => {
    const client = await ssh2Caller(stack, 'box', await stack.token('loader', []));
    try {
      const channel = await new Promise<ClientChannel>((resolve, reject) => client.exec(`scp -t ${stack.sshd.dataDir}/raw`, (e, c) => (e ? reject(e) : resolve(c))));
      const done = collect(channel);
      channel.end(stream);
      const result = await done;
      expect(result.code).toBe(1);
      expect(result.stdout).toMatch(new RegExp(`^\\0[^]*\x01twokey: [^\n]*${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
      expect(existsSync(join(stack.sshd.dataDir, 'raw'))).toBe(false);
      expect(existsSync(join(stack.sshd.dataDir, 'extra.txt'))).toBe(false);
    } finally {
      client.end();
    }
    expect((await scp('alice', ['support'], (dest) => [`${dest}:${stack.sshd.dataDir}/report.txt`, join(local, 'after.txt')])).code).toBe(0);
  });

  it('stops waiting when the caller goes away during the review, writes nothing, and goes on serving', async () => {
    const remote = join(stack.sshd.dataDir, 'abandoned.txt');
    const client = await ssh2Caller(stack, 'box', await stack.token('alice', ['support']));
    const channel = await new Promise<ClientChannel>((resolve, reject) => client.exec(`scp -t ${remote}`, (e, c) => (e ? reject(e) : resolve(c))));
    channel.write('C0644 4 abandoned.txt\nbye\n\0');
    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', `scp upload ${remote}`);
    channel.close();
    // The same connection goes on: a read on a new channel.
    const after = await new Promise<ClientChannel>((resolve, reject) => client.exec(`cat ${stack.sshd.dataDir}/report.txt`, (e, c) => (e ? reject(e) : resolve(c))));
    expect(await collect(after)).toMatchObject({ code: 0, stdout: 'line one\nline two\n' });
    client.end();
    await waitFor(() => (stack.agent.context.sessions.count('box') === 0 ? true : undefined), 20_000, 'the session ended');
    expect((await postDecision(mail.link, mail.token, 'approve')).status).toBe(200);
    expect((await scp('alice', ['support'], (dest) => [`${dest}:${stack.sshd.dataDir}/report.txt`, join(local, 'later.txt')])).code).toBe(0);
    expect(existsSync(remote)).toBe(false);
  });

  it('redeems a late approval of an upload only by the same upload, never by a command whose text is its review', async () => {
    const remote = join(stack.sshd.dataDir, 'late-notes.txt');
    const ran = join(stack.sshd.dataDir, 'granted-as-command');
    const content = `touch ${ran}\n`;
    const upload = `C0644 ${content.length} late-notes.txt\n${content}\0`;
    const alice = await stack.token('alice', ['support']);
    /** A raw caller's channel running `command` and sending `stream`, until its stderr matches `until` or it closes. */
    const raw = async (command: string, stream: string, until: RegExp): Promise<string> => {
      const client = await ssh2Caller(stack, 'box', alice);
      try {
        const channel = await new Promise<ClientChannel>((resolve, reject) => client.exec(command, (e, c) => (e ? reject(e) : resolve(c))));
        let stderr = '';
        await new Promise<void>((resolve) => {
          channel.stderr.on('data', (c: Buffer) => {
            stderr += c.toString('utf8');
            if (until.test(stderr)) resolve();
          });
          channel.on('close', () => resolve());
          channel.write(stream);
        });
        return stderr;
      } finally {
        client.end();
      }
    };
    // The caller leaves while the upload is held: the approval given later becomes a one-time grant.
    const held = await raw(`scp -t ${stack.sshd.dataDir}`, upload, /approval required, request ([0-9a-f-]{36})/);
    const requestId = /request ([0-9a-f-]{36})/.exec(held)?.[1] ?? '';
    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', `scp upload ${remote}`);
    expect((await postDecision(mail.link, mail.token, 'approve')).status).toBe(200);
    await waitFor(async () => ((await getRuntime('test').deps.approvals.get(requestId))?.delivered ? true : undefined), 15_000, 'the decision delivered to the agent');
    // The review text run as a shell script would run its first lines (the file's content).
    const review = HeldUpload.review(remote, Buffer.from(content), 0o644, 'scp');
    const asCommand = await raw(review, '', /approval required|running once/);
    expect(asCommand).toMatch(/approval required, request/);
    expect(existsSync(ran)).toBe(false);
    // The identical upload still runs once under the grant.
    const again = await raw(`scp -t ${stack.sshd.dataDir}`, upload, /running once|approval required/);
    expect(again).toContain('running once under the approval given earlier');
    // The file shows up when it is opened, before its bytes are written.
    await waitFor(() => (existsSync(remote) && readFileSync(remote).length >= content.length ? true : undefined), 15_000, 'the upload written');
    expect(readFileSync(remote, 'utf8')).toBe(content);
  });

  it.each(['nice scp -t', '/usr/bin/scp -t', 'env scp -p -t', 'scp -S x -t --'])(
    'refuses scp\'s sink spelled as %s PATH instead of running the real one on the write login with the caller\'s stream',
    async (spelling) => {
      const client = await ssh2Caller(stack, 'box', await stack.token('loader', []));
      try {
        const channel = await new Promise<ClientChannel>((resolve, reject) => client.exec(`${spelling} ${stack.sshd.dataDir}`, (e, c) => (e ? reject(e) : resolve(c))));
        const done = collect(channel);
        channel.end('C0644 3 unjudged.txt\nabc\0');
        const result = await done;
        expect(result.code).not.toBe(0);
        expect(result.stderr).toContain('twokey: an scp upload runs only as the command scp sends');
      } finally {
        client.end();
      }
      expect(existsSync(join(stack.sshd.dataDir, 'unjudged.txt'))).toBe(false);
    },
  );

  it('refuses an upload to a relative path (the write login has another home)', async () => {
    writeFileSync(join(local, 'rel.txt'), 'rel\n');
    const run = await scp('loader', [], (dest) => [join(local, 'rel.txt'), `${dest}:rel.txt`]);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('twokey: changes over scp need an absolute path');
  });
});
