import { readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SFTP_STATUS, SFTP_TYPE } from '../../../agent/ssh/sftp/packets';
import { RawSftp, sshBytes } from '../../support/raw-sftp';
import { uint32, uint64 } from '../../support/sftp-bytes';
import { ssh2Caller } from '../../support/ssh2-caller';
import { startSshStack, SSH_TEST_POLICY, type SshStack } from '../../support/ssh-stack';

/** SFTP EXTENDED requests with known names and crafted payloads, sent byte by byte. */
describe('SFTP extensions under attack', () => {
  let stack: SshStack;
  const opened: { end(): void }[] = [];

  beforeAll(async () => {
    stack = await startSshStack({ policy: SSH_TEST_POLICY.replace('blocks:\n', "blocks:\n  - { name: no-etc, targets: [box], paths: ['/etc/**'] }\n") });
  }, 120_000);
  afterAll(async () => {
    for (const client of opened) client.end();
    await stack?.stop();
  });

  const rawSftp = async (user: string, groups: string[]): Promise<RawSftp> => {
    const client = await ssh2Caller(stack, 'box', await stack.token(user, groups));
    opened.push(client);
    return RawSftp.open(client);
  };

  it('refuses check-file-name to a masked caller: its hashes are of the file as stored, unmasked', async () => {
    const file = join(stack.sshd.dataDir, 'hashed.txt');
    writeFileSync(file, 'key AKIAIOSFODNN7EXAMPLE\n', { mode: 0o644 });
    const sftp = await rawSftp('alice', ['support']);
    const reply = await sftp.extended('check-file-name', sshBytes(file), sshBytes('sha256'), uint64(0), uint64(0), uint32(256));
    expect(reply).toMatchObject({ type: SFTP_TYPE.status, status: SFTP_STATUS.permissionDenied, message: expect.stringMatching(/^twokey: check-file-name .*masked/) });
  });

  it('passes check-file-name on to the target for a caller whose reads are not masked', async () => {
    const sftp = await rawSftp('loader', []);
    const reply = await sftp.extended('check-file-name', sshBytes(join(stack.sshd.dataDir, 'hashed.txt')), sshBytes('sha256'), uint64(0), uint64(0), uint32(256));
    // OpenSSH's sftp-server does not implement it: its own answer shows the request reached it.
    expect(reply).toMatchObject({ type: SFTP_TYPE.status, status: SFTP_STATUS.opUnsupported, message: 'Operation unsupported' });
  });

  it('blocks a read extension naming a blocked path, as the plain request would be', async () => {
    const sftp = await rawSftp('alice', ['support']);
    for (const name of ['statvfs@openssh.com', 'space-available', 'expand-path@openssh.com']) {
      const reply = await sftp.extended(name, sshBytes('/etc/passwd'));
      expect(reply).toMatchObject({ status: SFTP_STATUS.permissionDenied, message: 'twokey: blocked by no-etc (/etc/passwd)' });
    }
  });

  /** The first name of a NAME reply. */
  const firstName = (reply: { rest: Buffer }): string => reply.rest.subarray(8, 8 + reply.rest.readUInt32BE(4)).toString('utf8');

  it('judges the name a path resolution answers: .., a relative path or a symlink into a blocked place is refused like the place', async () => {
    symlinkSync('/etc', join(stack.sshd.dataDir, 'etc-link'));
    const sftp = await rawSftp('alice', ['support']);
    for (const spelled of ['/tmp/../etc/passwd', '../../etc/passwd', join(stack.sshd.dataDir, 'etc-link', 'passwd')]) {
      const reply = await sftp.request(SFTP_TYPE.realpath, sshBytes(spelled));
      expect({ spelled, type: reply.type, status: reply.status, message: reply.message }).toEqual({ spelled, type: SFTP_TYPE.status, status: SFTP_STATUS.permissionDenied, message: 'twokey: blocked by no-etc (/etc/passwd)' });
    }
    const expanded = await sftp.extended('expand-path@openssh.com', sshBytes('~/../../etc/passwd'));
    expect(expanded).toMatchObject({ status: SFTP_STATUS.permissionDenied, message: 'twokey: blocked by no-etc (/etc/passwd)' });
    const allowed = await sftp.request(SFTP_TYPE.realpath, sshBytes(`${stack.sshd.dataDir}/./`));
    expect(allowed.type).toBe(SFTP_TYPE.name);
    expect(firstName(allowed)).toBe(stack.sshd.dataDir);
  });

  it('refuses a path resolution that reuses the id of a request still waiting for its answer, so no other reply passes for its answer', async () => {
    const sftp = await rawSftp('alice', ['support']);
    const replies = await sftp.sameId(1000, [SFTP_TYPE.stat, sshBytes('/tmp')], [SFTP_TYPE.realpath, sshBytes('/tmp/../etc/passwd')]);
    expect(replies.map((r) => r.type).sort()).toEqual([SFTP_TYPE.status, SFTP_TYPE.attrs].sort());
    expect(replies.find((r) => r.type === SFTP_TYPE.status)).toMatchObject({ status: SFTP_STATUS.failure, message: 'twokey: request id 1000 is waiting for its answer' });
    const reused = await sftp.sameId(1001, [SFTP_TYPE.realpath, sshBytes('/tmp/../etc/passwd')], [SFTP_TYPE.stat, sshBytes('/tmp')]);
    expect(reused.map((r) => r.message).sort()).toEqual(['twokey: blocked by no-etc (/etc/passwd)', 'twokey: request id 1001 is waiting for its answer']);
  });

  it('refuses copy-data, lsetstat, hardlink and read names spelled otherwise, and the target stays as it was', async () => {
    const file = join(stack.sshd.dataDir, 'kept.txt');
    writeFileSync(file, 'kept\n', { mode: 0o644 });
    const sftp = await rawSftp('loader', []);
    const open = await sftp.request(SFTP_TYPE.open, sshBytes(file), uint32(1), uint32(0));
    expect(open.type).toBe(SFTP_TYPE.handle);
    const handle = open.rest.subarray(4, 4 + open.rest.readUInt32BE(0));
    const attrs = Buffer.concat([uint32(0x4), uint32(0o4777)]);
    const attempts: [string, Buffer[]][] = [
      ['copy-data', [sshBytes(handle), uint64(0), uint64(0), sshBytes(handle), uint64(0)]],
      ['lsetstat@openssh.com', [sshBytes(file), attrs]],
      ['hardlink@openssh.com', [sshBytes(file), sshBytes(`${file}.link`)]],
      ['fsync@openssh.com', [sshBytes(handle)]],
      // A read extension's name with a byte more, or in another case: not the read it resembles.
      ['statvfs@openssh.com\u0000', [sshBytes(file)]],
      ['STATVFS@openssh.com', [sshBytes(file)]],
    ];
    for (const [name, payload] of attempts) {
      const reply = await sftp.extended(name, ...payload);
      expect({ name, status: reply.status, message: reply.message }).toEqual({ name, status: SFTP_STATUS.permissionDenied, message: expect.stringMatching(/^twokey: .* is not relayed over SFTP$/) });
    }
    expect(readFileSync(file, 'utf8')).toBe('kept\n');
  });

  it("answers a handle extension on a handle it never gave, or on an upload it holds, without reaching the target's handles", async () => {
    const sftp = await rawSftp('loader', []);
    const foreign = await sftp.extended('fstatvfs@openssh.com', sshBytes(Buffer.from([0, 0, 0, 0])));
    expect(foreign).toMatchObject({ status: SFTP_STATUS.failure, message: 'twokey: no such handle' });
    const upload = await sftp.request(SFTP_TYPE.open, sshBytes(join(stack.sshd.dataDir, 'held.txt')), uint32(0x1a), uint32(0));
    const handle = upload.rest.subarray(4, 4 + upload.rest.readUInt32BE(0));
    for (const name of ['fstatvfs@openssh.com', 'fsync@openssh.com', 'check-file-handle']) {
      expect(await sftp.extended(name, sshBytes(handle))).toMatchObject({ status: SFTP_STATUS.opUnsupported, message: 'twokey: extended on an upload the agent holds is not supported' });
    }
  });

  it('answers a read extension cut short before its path with BAD_MESSAGE and goes on serving', async () => {
    const sftp = await rawSftp('alice', ['support']);
    expect(await sftp.extended('statvfs@openssh.com', uint32(100), Buffer.from('/tm'))).toMatchObject({ status: SFTP_STATUS.badMessage });
    expect(await sftp.extended('statvfs@openssh.com')).toMatchObject({ status: SFTP_STATUS.badMessage });
    expect((await sftp.extended('statvfs@openssh.com', sshBytes(stack.sshd.dataDir))).type).toBe(SFTP_TYPE.extendedReply);
  });
});
