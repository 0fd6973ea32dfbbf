import { SshWireReader, sshString } from '../../../core/ssh/wire';
import { SFTP_OPERATIONS, type SftpOperationName } from '../../../core/ssh/classify-sftp';

/**
 * SFTP version 3 packets (draft-ietf-secsh-filexfer-02, the version OpenSSH speaks): a framer that cuts
 * the byte stream into packets, a parser of the requests the relay judges, and the replies it builds.
 * No I/O here.
 */

/** The largest packet taken either way: OpenSSH's sftp-server limit (256 KiB) plus headers. */
export const MAX_SFTP_PACKET_BYTES = 256 * 1024 + 1024;

export const SFTP_TYPE = {
  init: 1, version: 2, open: 3, close: 4, read: 5, write: 6, lstat: 7, fstat: 8, setstat: 9, fsetstat: 10, opendir: 11, readdir: 12,
  remove: 13, mkdir: 14, rmdir: 15, realpath: 16, stat: 17, rename: 18, readlink: 19, symlink: 20, link: 21,
  status: 101, handle: 102, data: 103, name: 104, attrs: 105, extended: 200, extendedReply: 201,
} as const;

export const SFTP_STATUS = { ok: 0, eof: 1, noSuchFile: 2, permissionDenied: 3, failure: 4, badMessage: 5, opUnsupported: 8 } as const;

const OPERATION_OF = new Map<number, SftpOperationName>(SFTP_OPERATIONS.map((op) => [SFTP_TYPE[op], op]));

/** Cuts a byte stream into whole packets (length-prefixed); a length of zero or over the cap is an error. */
export class SftpFramer {
  private buffered: Buffer[] = [];
  private size = 0;
  /** Frame length of the first packet buffered, once its length prefix is here (0 before). */
  private needed = 0;

  /**
   * The whole packets now available, each as its frame on the wire (length prefix included, so that a
   * relay passes it on without a copy: `bodyOf` gives the packet), or a length that is zero or over the cap.
   */
  push(chunk: Buffer): { packets: Buffer[] } | { invalidLength: number } {
    this.buffered.push(chunk);
    this.size += chunk.length;
    const packets: Buffer[] = [];
    // A packet arriving in many chunks is joined once, when all of it is here.
    if (this.size < Math.max(this.needed, 4)) return { packets };
    let data = this.buffered.length === 1 ? (this.buffered[0] as Buffer) : Buffer.concat(this.buffered, this.size);
    this.needed = 0;
    while (data.length >= 4) {
      const length = data.readUInt32BE(0);
      if (length > MAX_SFTP_PACKET_BYTES || length === 0) return { invalidLength: length };
      if (data.length < 4 + length) {
        this.needed = 4 + length;
        break;
      }
      packets.push(data.subarray(0, 4 + length));
      data = data.subarray(4 + length);
    }
    this.buffered = data.length ? [data] : [];
    this.size = data.length;
    return { packets };
  }
}

/** Whether `next` starts where `previous` ends in memory (two subarrays of one chunk). */
const follows = (previous: Buffer, next: Buffer): boolean => previous.buffer === next.buffer && previous.byteOffset + previous.length === next.byteOffset;

/**
 * Adds `bytes` to a list of buffers to write, joined with the last one when it follows it in memory:
 * packets cut from one chunk go out in one write (one SSH packet, not one per SFTP packet).
 */
export function appendJoined(parts: Buffer[], bytes: Buffer): void {
  const last = parts[parts.length - 1];
  if (last && follows(last, bytes)) parts[parts.length - 1] = Buffer.from(bytes.buffer, last.byteOffset, last.length + bytes.length);
  else parts.push(bytes);
}

/** File attributes as far as the relay needs them: the permission bits an upload asks for. */
export interface SftpAttrs {
  readonly mode?: number;
}

/** One request as the relay judges it: its id, the operation, the paths or handle it names. */
export type SftpRequestPacket =
  | { readonly kind: 'init' }
  | { readonly kind: 'request'; readonly id: number; readonly op: SftpOperationName; readonly paths: readonly string[]; readonly handle?: Buffer; readonly flags?: number; readonly attrs?: SftpAttrs; readonly extension?: string; readonly offset?: number; readonly length?: number; readonly data?: Buffer }
  | { readonly kind: 'malformed'; readonly id: number | undefined };

const ATTR = { size: 0x1, uidgid: 0x2, permissions: 0x4, acmodtime: 0x8, extended: 0x80000000 } as const;

function readAttrs(r: SshWireReader): SftpAttrs | undefined {
  const flags = r.uint32();
  if (flags === undefined) return undefined;
  if (flags & ATTR.size && r.uint64() === undefined) return undefined;
  if (flags & ATTR.uidgid && (r.uint32() === undefined || r.uint32() === undefined)) return undefined;
  const mode = flags & ATTR.permissions ? r.uint32() : undefined;
  if (flags & ATTR.permissions && mode === undefined) return undefined;
  if (flags & ATTR.acmodtime && (r.uint32() === undefined || r.uint32() === undefined)) return undefined;
  if (flags & ATTR.extended) {
    const count = r.uint32();
    if (count === undefined) return undefined;
    for (let i = 0; i < count; i++) if (r.string() === undefined || r.string() === undefined) return undefined;
  }
  return { mode };
}

const text = (b: Buffer | undefined): string | undefined => b?.toString('utf8');

/**
 * What the OpenSSH (PROTOCOL, "SFTP protocol changes") and filexfer extensions carry first after their
 * name: how many paths, or a handle. Any other extension names no path: its data is not one
 * (users-groups-by-id's are id lists), and it is refused unless classifySftp knows it only reports.
 */
const EXTENSION_ARGUMENTS: ReadonlyMap<string, 1 | 2 | 'handle'> = new Map<string, 1 | 2 | 'handle'>([
  ['posix-rename@openssh.com', 2],
  ['hardlink@openssh.com', 2],
  ['statvfs@openssh.com', 1],
  ['lsetstat@openssh.com', 1],
  ['expand-path@openssh.com', 1],
  ['check-file-name', 1],
  ['space-available', 1],
  ['fstatvfs@openssh.com', 'handle'],
  ['fsync@openssh.com', 'handle'],
  ['check-file-handle', 'handle'],
]);

/** Parses one request packet; anything that does not parse whole is `malformed` (answered with BAD_MESSAGE). */
export function parseRequest(packet: Buffer): SftpRequestPacket {
  const type = packet[0];
  const r = new SshWireReader(packet.subarray(1));
  if (type === SFTP_TYPE.init) return { kind: 'init' };
  const id = r.uint32();
  const op = type === undefined ? undefined : OPERATION_OF.get(type);
  if (id === undefined || !op) return { kind: 'malformed', id };
  const bad = { kind: 'malformed', id } as const;
  const path = (): string | undefined => text(r.string());
  switch (op) {
    case 'open': {
      const p = path();
      const flags = r.uint32();
      const attrs = readAttrs(r);
      return p === undefined || flags === undefined || !attrs ? bad : { kind: 'request', id, op, paths: [p], flags, attrs };
    }
    case 'close':
    case 'fstat':
    case 'readdir': {
      const handle = r.string();
      return handle ? { kind: 'request', id, op, paths: [], handle } : bad;
    }
    case 'read': {
      const handle = r.string();
      const offset = r.uint64();
      const length = r.uint32();
      return handle && offset !== undefined && length !== undefined ? { kind: 'request', id, op, paths: [], handle, offset, length } : bad;
    }
    case 'write': {
      const handle = r.string();
      const offset = r.uint64();
      const data = r.string();
      return handle && offset !== undefined && data ? { kind: 'request', id, op, paths: [], handle, offset, data } : bad;
    }
    case 'fsetstat': {
      const handle = r.string();
      const attrs = readAttrs(r);
      return handle && attrs ? { kind: 'request', id, op, paths: [], handle, attrs } : bad;
    }
    case 'setstat':
    case 'mkdir': {
      const p = path();
      const attrs = readAttrs(r);
      return p !== undefined && attrs ? { kind: 'request', id, op, paths: [p], attrs } : bad;
    }
    case 'rename':
    case 'symlink':
    case 'link': {
      const a = path();
      const b = path();
      return a !== undefined && b !== undefined ? { kind: 'request', id, op, paths: [a, b] } : bad;
    }
    case 'extended': {
      const extension = text(r.string());
      if (extension === undefined) return bad;
      const carries = EXTENSION_ARGUMENTS.get(extension) ?? 0;
      if (carries === 'handle') {
        const handle = r.string();
        return handle ? { kind: 'request', id, op, paths: [], handle, extension } : bad;
      }
      const paths: string[] = [];
      while (paths.length < carries) {
        const p = path();
        if (p === undefined) return bad;
        paths.push(p);
      }
      return { kind: 'request', id, op, paths, extension };
    }
    default: {
      const p = path();
      return p !== undefined ? { kind: 'request', id, op, paths: [p] } : bad;
    }
  }
}

const frame = (type: number, ...parts: Buffer[]): Buffer => {
  const body = Buffer.concat([Buffer.from([type]), ...parts]);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(body.length);
  return Buffer.concat([length, body]);
};
const uint32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};

export const statusPacket = (id: number, code: number, message: string): Buffer =>
  frame(SFTP_TYPE.status, uint32(id), uint32(code), sshString(Buffer.from(message, 'utf8')), sshString(''));

export const dataPacket = (id: number, data: Buffer): Buffer => frame(SFTP_TYPE.data, uint32(id), sshString(data));

/** ATTRS with the size and permissions only. */
export const attrsPacket = (id: number, size: number, mode: number): Buffer => {
  const sizeBytes = Buffer.alloc(8);
  sizeBytes.writeBigUInt64BE(BigInt(size));
  return frame(SFTP_TYPE.attrs, uint32(id), uint32(ATTR.size | ATTR.permissions), sizeBytes, uint32(mode));
};

export const handlePacket = (id: number, handle: Buffer): Buffer => frame(SFTP_TYPE.handle, uint32(id), sshString(handle));

/** A reply's type and id, and for HANDLE the handle (the relay learns which path a handle names). */
export function parseReply(packet: Buffer): { readonly type: number; readonly id: number | undefined; readonly handle?: Buffer } {
  const type = packet[0] ?? 0;
  const r = new SshWireReader(packet.subarray(1));
  const id = type === SFTP_TYPE.version ? undefined : r.uint32();
  return type === SFTP_TYPE.handle ? { type, id, handle: r.string() } : { type, id };
}

/** The file names of a NAME reply (its body after type and id: count, then name, long name, attributes each); undefined when it does not parse. */
export function replyNames(packet: Buffer): string[] | undefined {
  const r = new SshWireReader(packet.subarray(1 + 4));
  const count = r.uint32();
  if (count === undefined) return undefined;
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    const name = r.string();
    if (name === undefined || r.string() === undefined || !readAttrs(r)) return undefined;
    names.push(name.toString('utf8'));
  }
  return names;
}

/** A framed packet's body: its type, id and fields. */
export const bodyOf = (frame: Buffer): Buffer => frame.subarray(4);
