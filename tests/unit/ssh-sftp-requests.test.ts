import { classifySftp, SFTP_OPEN_FLAGS as F } from '../../core/ssh/classify-sftp';
import { framedSftpPacket, MAX_SFTP_PACKET_BYTES, MAX_SFTP_TRACKED_HANDLES, SFTP_PACKET as T, SFTP_STATUS, sftpStatusPacket, SftpFramer, SftpRequestTracker } from '../../core/ssh/sftp-requests';

type FieldValue = string | Buffer | { readonly u32: number } | { readonly u64: number };

/** An SFTP packet (type byte and fields, unframed), built byte by byte as the draft lays them out. */
function packet(type: number, ...fields: FieldValue[]): Buffer {
  const parts: Buffer[] = [Buffer.from([type])];
  for (const field of fields) {
    if (typeof field === 'string' || Buffer.isBuffer(field)) {
      const bytes = typeof field === 'string' ? Buffer.from(field, 'utf8') : field;
      const length = Buffer.alloc(4);
      length.writeUInt32BE(bytes.length);
      parts.push(length, bytes);
    } else if ('u32' in field) {
      const value = Buffer.alloc(4);
      value.writeUInt32BE(field.u32);
      parts.push(value);
    } else {
      const value = Buffer.alloc(8);
      value.writeBigUInt64BE(BigInt(field.u64));
      parts.push(value);
    }
  }
  return Buffer.concat(parts);
}

const NO_ATTRS = { u32: 0 };
const HANDLE = Buffer.from([0, 1, 0xff, 7]);
const STREAM_PACKETS = [
  packet(T.init, { u32: 3 }),
  packet(T.open, { u32: 1 }, '/srv/report.csv', { u32: F.write | F.create | F.truncate }, NO_ATTRS),
  packet(T.write, { u32: 2 }, HANDLE, { u64: 0 }, Buffer.alloc(40, 0x61)),
];
const STREAM = Buffer.concat(STREAM_PACKETS.map(framedSftpPacket));

function frame(chunks: readonly Buffer[]): Buffer[] {
  const framer = new SftpFramer();
  return chunks.flatMap((chunk) => {
    const framed = framer.push(chunk);
    if (!framed.ok) throw new Error(framed.reason);
    return framed.packets;
  });
}

/** The packets as one comparable string (thousands of splits compare faster than with toEqual). */
const hex = (packets: readonly Buffer[]): string => packets.map((p) => p.toString('hex')).join('|');
const EXPECTED = hex(STREAM_PACKETS);

describe('SftpFramer', () => {
  it('gives the same packets at every split point', () => {
    const wrong = [];
    for (let i = 0; i <= STREAM.length; i++) if (hex(frame([STREAM.subarray(0, i), STREAM.subarray(i)])) !== EXPECTED) wrong.push(i);
    expect(wrong).toEqual([]);
  });

  it('gives the same packets at every pair of split points', () => {
    const wrong = [];
    for (let i = 0; i <= STREAM.length; i++) {
      for (let j = i; j <= STREAM.length; j++) if (hex(frame([STREAM.subarray(0, i), STREAM.subarray(i, j), STREAM.subarray(j)])) !== EXPECTED) wrong.push([i, j]);
    }
    expect(wrong).toEqual([]);
  });

  it('gives the same packets one byte at a time', () => {
    expect(frame([...STREAM].map((b) => Buffer.from([b])))).toEqual(STREAM_PACKETS);
  });

  it('refuses an empty packet and one over the limit before buffering it', () => {
    const over = Buffer.alloc(4);
    over.writeUInt32BE(MAX_SFTP_PACKET_BYTES + 1);
    expect(new SftpFramer().push(Buffer.alloc(4))).toEqual({ ok: false, reason: 'an empty SFTP packet' });
    expect(new SftpFramer().push(over)).toEqual({ ok: false, reason: `an SFTP packet of ${MAX_SFTP_PACKET_BYTES + 1} bytes, over the limit of ${MAX_SFTP_PACKET_BYTES}` });
  });
});

describe('SftpRequestTracker', () => {
  it('reads INIT and an OPEN with its flags', () => {
    const tracker = new SftpRequestTracker();
    expect(tracker.request(packet(T.init, { u32: 3 }))).toEqual({ kind: 'init', version: 3 });
    expect(tracker.request(STREAM_PACKETS[1] as Buffer)).toEqual({ kind: 'request', id: 1, request: { op: 'open', paths: ['/srv/report.csv'], flags: F.write | F.create | F.truncate } });
  });

  it('names the file a WRITE goes to from the handle its OPEN got, until CLOSE', () => {
    const tracker = new SftpRequestTracker();
    tracker.request(STREAM_PACKETS[1] as Buffer);
    tracker.response(packet(T.handle, { u32: 1 }, HANDLE));
    const write = tracker.request(STREAM_PACKETS[2] as Buffer);
    expect(write).toEqual({ kind: 'request', id: 2, request: { op: 'write', paths: ['/srv/report.csv'] } });
    expect(tracker.request(packet(T.close, { u32: 3 }, HANDLE))).toEqual({ kind: 'request', id: 3, request: { op: 'close', paths: ['/srv/report.csv'] } });
    expect(tracker.request(packet(T.write, { u32: 4 }, HANDLE, { u64: 0 }, 'x'))).toEqual({ kind: 'request', id: 4, request: { op: 'write', paths: [] } });
  });

  it('forgets an OPEN the server refused', () => {
    const tracker = new SftpRequestTracker();
    tracker.request(packet(T.open, { u32: 1 }, '/etc/shadow', { u32: F.read }, NO_ATTRS));
    tracker.response(packet(T.status, { u32: 1 }, { u32: SFTP_STATUS.permissionDenied }, 'denied', ''));
    tracker.response(packet(T.handle, { u32: 1 }, HANDLE));
    expect(tracker.request(packet(T.read, { u32: 2 }, HANDLE, { u64: 0 }, { u32: 100 }))).toEqual({ kind: 'request', id: 2, request: { op: 'read', paths: [] } });
  });

  it('resolves relative paths against the directory REALPATH "." names, and normalizes ..', () => {
    const tracker = new SftpRequestTracker();
    expect(tracker.request(packet(T.remove, { u32: 1 }, 'notes/../x'))).toMatchObject({ request: { paths: ['x'] } });
    tracker.request(packet(T.realpath, { u32: 2 }, '.'));
    tracker.response(packet(T.name, { u32: 2 }, { u32: 1 }, '/home/alice', 'drwx------ alice', NO_ATTRS));
    expect(tracker.request(packet(T.remove, { u32: 3 }, '../../etc/passwd'))).toMatchObject({ request: { paths: ['/etc/passwd'] } });
    expect(tracker.request(packet(T.mkdir, { u32: 4 }, '/srv/a/../../etc/cron.d', NO_ATTRS))).toMatchObject({ request: { paths: ['/etc/cron.d'] } });
  });

  it.each([
    ['RENAME', packet(T.rename, { u32: 9 }, '/a', '/b'), { op: 'rename', paths: ['/a', '/b'] }],
    ['SYMLINK', packet(T.symlink, { u32: 9 }, '/srv/l', '/etc/shadow'), { op: 'symlink', paths: ['/srv/l', '/etc/shadow'] }],
    ['SETSTAT', packet(T.setstat, { u32: 9 }, '/srv/x', NO_ATTRS), { op: 'setstat', paths: ['/srv/x'] }],
    ['posix-rename', packet(T.extended, { u32: 9 }, 'posix-rename@openssh.com', '/a', '/b'), { op: 'extended', extension: 'posix-rename@openssh.com', paths: ['/a', '/b'] }],
    ['statvfs', packet(T.extended, { u32: 9 }, 'statvfs@openssh.com', '/'), { op: 'extended', extension: 'statvfs@openssh.com', paths: ['/'] }],
    ['an unknown extension', packet(T.extended, { u32: 9 }, 'frob@example.com', 'data'), { op: 'extended', extension: 'frob@example.com', paths: [] }],
  ])('reads %s', (_what, bytes, request) => {
    expect(new SftpRequestTracker().request(bytes)).toEqual({ kind: 'request', id: 9, request });
  });

  it.each([
    ['a short INIT', packet(T.init), { kind: 'malformed', reason: 'a short INIT' }],
    ['a request without an id', packet(T.stat), { kind: 'malformed', reason: 'a packet of type 17 without a request id' }],
    ['a path longer than the packet', Buffer.concat([packet(T.stat, { u32: 5 }, { u32: 100 }), Buffer.from('/etc')]), { kind: 'malformed', id: 5, reason: 'a short stat' }],
    ['an OPEN without flags', packet(T.open, { u32: 5 }, '/x'), { kind: 'malformed', id: 5, reason: 'a short open' }],
    ['an unknown request type', packet(99, { u32: 5 }), { kind: 'malformed', id: 5, reason: 'an unknown request type 99' }],
    ['a server reply sent as a request', packet(T.status, { u32: 5 }, { u32: 0 }), { kind: 'malformed', id: 5, reason: 'an unknown request type 101' }],
    ['an EXTENDED without a name', packet(T.extended, { u32: 5 }), { kind: 'malformed', id: 5, reason: 'an EXTENDED request without a name' }],
  ])('reports %s as malformed', (_what, bytes, expected) => {
    expect(new SftpRequestTracker().request(bytes)).toEqual(expected);
  });

  it('refuses a second open under an id still awaiting its handle', () => {
    const tracker = new SftpRequestTracker();
    tracker.request(packet(T.open, { u32: 1 }, '/srv/a', { u32: F.read }, NO_ATTRS));
    expect(tracker.request(packet(T.open, { u32: 1 }, '/etc/b', { u32: F.write }, NO_ATTRS))).toEqual({ kind: 'malformed', id: 1, reason: 'request id 1 is already awaiting a handle' });
  });

  it('refuses to hold more handles than the limit', () => {
    const tracker = new SftpRequestTracker();
    for (let id = 0; id < MAX_SFTP_TRACKED_HANDLES; id++) expect(tracker.request(packet(T.opendir, { u32: id }, `/d${id}`)).kind).toBe('request');
    expect(tracker.request(packet(T.opendir, { u32: 99_999 }, '/one-more'))).toEqual({ kind: 'malformed', id: 99_999, reason: `more than ${MAX_SFTP_TRACKED_HANDLES} open handles` });
  });

  it('feeds classifySftp: an upload is a write naming its file', () => {
    const decoded = new SftpRequestTracker().request(STREAM_PACKETS[1] as Buffer);
    if (decoded.kind !== 'request') throw new Error(decoded.kind);
    expect(classifySftp(decoded.request)).toEqual({ class: 'write', reason: 'OPEN for write, create, truncate', paths: ['/srv/report.csv'] });
  });
});

describe('sftpStatusPacket', () => {
  it('lays out a STATUS reply: id, code, message and an empty language tag', () => {
    expect(sftpStatusPacket(7, SFTP_STATUS.permissionDenied, 'twokey: held')).toEqual(framedSftpPacket(packet(T.status, { u32: 7 }, { u32: 3 }, 'twokey: held', '')));
  });
});
