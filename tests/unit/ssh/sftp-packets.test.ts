import { classifySftp, SFTP_OPEN_FLAGS as F } from '../../../core/ssh/classify-sftp';
import { sshString } from '../../../core/ssh/wire';
import { framed, packet, uint32, uint64 } from '../../support/sftp-bytes';
import { bodyOf, MAX_SFTP_PACKET_BYTES, parseReply, parseRequest, SftpFramer, SFTP_STATUS, SFTP_TYPE, statusPacket } from '../../../agent/ssh/sftp/packets';

const NO_ATTRS = uint32(0);
const open = packet(SFTP_TYPE.open, uint32(7), sshString('/srv/data/report.txt'), uint32(0x1a), uint32(0x4), uint32(0o640));
const write = packet(SFTP_TYPE.write, uint32(8), sshString('h1'), uint64(4096), sshString('hello'));
const close = packet(SFTP_TYPE.close, uint32(9), sshString('h1'));
const stream = Buffer.concat([open, write, close].map(framed));

function cutAt(points: number[]): Buffer[] {
  const framer = new SftpFramer();
  const out: Buffer[] = [];
  let from = 0;
  for (const to of [...points, stream.length]) {
    const cut = framer.push(stream.subarray(from, to));
    if ('invalidLength' in cut) throw new Error('unexpected');
    out.push(...cut.packets.map(bodyOf));
    from = to;
  }
  return out;
}

describe('SFTP framing and request parsing', () => {
  it('cuts the same packets at every split point and every pair of split points', () => {
    for (let i = 0; i <= stream.length; i++) {
      expect(cutAt([i])).toEqual([open, write, close]);
      for (let j = i; j <= stream.length; j += 7) expect(cutAt([i, j])).toEqual([open, write, close]);
    }
  });

  it('cuts the same packets from one byte at a time', () => {
    expect(cutAt(Array.from({ length: stream.length }, (_, i) => i))).toEqual([open, write, close]);
  });

  it('refuses a length over the cap and a zero length before buffering the packet', () => {
    expect(new SftpFramer().push(uint32(MAX_SFTP_PACKET_BYTES + 1))).toEqual({ invalidLength: MAX_SFTP_PACKET_BYTES + 1 });
    expect(new SftpFramer().push(uint32(0))).toEqual({ invalidLength: 0 });
  });

  it('parses an OPEN with its path, flags and permission bits', () => {
    expect(parseRequest(open)).toEqual({ kind: 'request', id: 7, op: 'open', paths: ['/srv/data/report.txt'], flags: 0x1a, attrs: { mode: 0o640 } });
  });

  it('parses a WRITE with its handle, offset and data', () => {
    expect(parseRequest(write)).toMatchObject({ kind: 'request', id: 8, op: 'write', handle: Buffer.from('h1'), offset: 4096, data: Buffer.from('hello') });
  });

  it('calls a truncated request, an unknown type and trailing garbage in attributes malformed', () => {
    expect(parseRequest(open.subarray(0, open.length - 2))).toEqual({ kind: 'malformed', id: 7 });
    expect(parseRequest(packet(99, uint32(3)))).toEqual({ kind: 'malformed', id: 3 });
    expect(parseRequest(packet(SFTP_TYPE.open, uint32(4), sshString('/x'), uint32(1), uint32(0x80000000), uint32(5)))).toEqual({ kind: 'malformed', id: 4 });
  });

  it.each([
    ['a request without an id', packet(SFTP_TYPE.stat), undefined],
    ['a path longer than the packet', Buffer.concat([packet(SFTP_TYPE.stat, uint32(5), uint32(100)), Buffer.from('/etc')]), 5],
    ['an OPEN without flags', packet(SFTP_TYPE.open, uint32(5), sshString('/x')), 5],
    ['a server reply sent as a request', packet(SFTP_TYPE.status, uint32(5), uint32(0)), 5],
    ['an EXTENDED without a name', packet(SFTP_TYPE.extended, uint32(5)), 5],
  ])('calls %s malformed, with the id when it got that far', (_what, bytes, id) => {
    expect(parseRequest(bytes)).toEqual({ kind: 'malformed', id });
  });

  it.each([
    ['RENAME', packet(SFTP_TYPE.rename, uint32(9), sshString('/a'), sshString('/b')), { op: 'rename', paths: ['/a', '/b'] }],
    ['SYMLINK', packet(SFTP_TYPE.symlink, uint32(9), sshString('/srv/l'), sshString('/etc/shadow')), { op: 'symlink', paths: ['/srv/l', '/etc/shadow'] }],
    ['SETSTAT', packet(SFTP_TYPE.setstat, uint32(9), sshString('/srv/x'), NO_ATTRS), { op: 'setstat', paths: ['/srv/x'] }],
    ['posix-rename', packet(SFTP_TYPE.extended, uint32(9), sshString('posix-rename@openssh.com'), sshString('/a'), sshString('/b')), { op: 'extended', extension: 'posix-rename@openssh.com', paths: ['/a', '/b'] }],
    ['statvfs', packet(SFTP_TYPE.extended, uint32(9), sshString('statvfs@openssh.com'), sshString('/')), { op: 'extended', extension: 'statvfs@openssh.com', paths: ['/'] }],
  ])('reads the paths of %s', (_what, bytes, request) => {
    expect(parseRequest(bytes)).toMatchObject({ kind: 'request', id: 9, ...request });
  });

  it('reads the handle of fstatvfs, and calls statvfs without its path malformed', () => {
    const handle = Buffer.from([0, 0, 0, 1]);
    expect(parseRequest(packet(SFTP_TYPE.extended, uint32(9), sshString('fstatvfs@openssh.com'), sshString(handle)))).toEqual({ kind: 'request', id: 9, op: 'extended', paths: [], handle, extension: 'fstatvfs@openssh.com' });
    expect(parseRequest(packet(SFTP_TYPE.extended, uint32(9), sshString('statvfs@openssh.com')))).toEqual({ kind: 'malformed', id: 9 });
  });

  it('takes no path from an extension whose data is not one (the id lists of users-groups-by-id)', () => {
    const ids = packet(SFTP_TYPE.extended, uint32(9), sshString('users-groups-by-id@openssh.com'), sshString(uint32(1000)), sshString(uint32(1000)));
    expect(parseRequest(ids)).toEqual({ kind: 'request', id: 9, op: 'extended', paths: [], extension: 'users-groups-by-id@openssh.com' });
  });

  it('reads an extension it does not know by its name alone, which classifySftp calls a write', () => {
    const parsed = parseRequest(packet(SFTP_TYPE.extended, uint32(9), sshString('frob@example.com'), sshString('data')));
    expect(parsed).toEqual({ kind: 'request', id: 9, op: 'extended', paths: [], extension: 'frob@example.com' });
    if (parsed.kind !== 'request') throw new Error(parsed.kind);
    expect(classifySftp(parsed).class).toBe('write');
  });

  it('gives classifySftp what it judges: an upload OPEN is a write naming its file', () => {
    const upload = parseRequest(packet(SFTP_TYPE.open, uint32(1), sshString('/srv/report.csv'), uint32(F.write | F.create | F.truncate), NO_ATTRS));
    if (upload.kind !== 'request') throw new Error(upload.kind);
    expect(classifySftp(upload)).toEqual({ class: 'write', reason: 'OPEN for write, create, truncate', paths: ['/srv/report.csv'] });
  });

  it('lays out a STATUS reply: id, code, message and an empty language tag, which the reply parser reads back', () => {
    const reply = statusPacket(5, SFTP_STATUS.permissionDenied, 'twokey: no');
    expect(reply).toEqual(framed(packet(SFTP_TYPE.status, uint32(5), uint32(SFTP_STATUS.permissionDenied), sshString('twokey: no'), sshString(''))));
    expect(parseReply(bodyOf(reply))).toEqual({ type: SFTP_TYPE.status, id: 5 });
  });
});
