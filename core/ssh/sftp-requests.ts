import { posix } from 'node:path';
import type { SftpOperationName, SftpRequest } from './classify-sftp';
import { sshString, SshWireReader } from './wire';

/**
 * SFTP version 3 (draft-ietf-secsh-filexfer-02, the version OpenSSH speaks) read off the byte streams
 * of a `subsystem sftp` channel, without I/O: packets framed, client requests turned into the
 * `SftpRequest` that `classifySftp` judges, handles traced back to the paths they were opened on.
 */

/** OpenSSH's sftp-server refuses longer packets (SFTP_MAX_MSG_LENGTH). */
export const MAX_SFTP_PACKET_BYTES = 256 * 1024;
/** Handles and opens awaiting their HANDLE reply that one channel may hold. */
export const MAX_SFTP_TRACKED_HANDLES = 1024;

/** Packet types (section 3 of the draft). */
export const SFTP_PACKET = {
  init: 1, version: 2, open: 3, close: 4, read: 5, write: 6, lstat: 7, fstat: 8, setstat: 9, fsetstat: 10, opendir: 11, readdir: 12, remove: 13,
  mkdir: 14, rmdir: 15, realpath: 16, stat: 17, rename: 18, readlink: 19, symlink: 20, status: 101, handle: 102, data: 103, name: 104, attrs: 105,
  extended: 200, extendedReply: 201,
} as const;

/** SSH_FX_* status codes (section 7). */
export const SFTP_STATUS = { ok: 0, eof: 1, noSuchFile: 2, permissionDenied: 3, failure: 4, badMessage: 5, opUnsupported: 8 } as const;

/** The fields after a request's id that name files: a path, a handle, or a value skipped over. */
type Field = 'path' | 'handle' | 'flags' | 'uint32' | 'uint64' | 'bytes';

const REQUEST_LAYOUTS: ReadonlyMap<number, { readonly op: SftpOperationName; readonly fields: readonly Field[] }> = new Map([
  [SFTP_PACKET.open, { op: 'open', fields: ['path', 'flags'] }],
  [SFTP_PACKET.close, { op: 'close', fields: ['handle'] }],
  [SFTP_PACKET.read, { op: 'read', fields: ['handle', 'uint64', 'uint32'] }],
  [SFTP_PACKET.write, { op: 'write', fields: ['handle', 'uint64', 'bytes'] }],
  [SFTP_PACKET.lstat, { op: 'lstat', fields: ['path'] }],
  [SFTP_PACKET.fstat, { op: 'fstat', fields: ['handle'] }],
  [SFTP_PACKET.setstat, { op: 'setstat', fields: ['path'] }],
  [SFTP_PACKET.fsetstat, { op: 'fsetstat', fields: ['handle'] }],
  [SFTP_PACKET.opendir, { op: 'opendir', fields: ['path'] }],
  [SFTP_PACKET.readdir, { op: 'readdir', fields: ['handle'] }],
  [SFTP_PACKET.remove, { op: 'remove', fields: ['path'] }],
  [SFTP_PACKET.mkdir, { op: 'mkdir', fields: ['path'] }],
  [SFTP_PACKET.rmdir, { op: 'rmdir', fields: ['path'] }],
  [SFTP_PACKET.realpath, { op: 'realpath', fields: ['path'] }],
  [SFTP_PACKET.stat, { op: 'stat', fields: ['path'] }],
  [SFTP_PACKET.rename, { op: 'rename', fields: ['path', 'path'] }],
  [SFTP_PACKET.readlink, { op: 'readlink', fields: ['path'] }],
  [SFTP_PACKET.symlink, { op: 'symlink', fields: ['path', 'path'] }],
]);

/** The files OpenSSH's and the draft's extensions name; an extension not here names none (and is a write). */
const EXTENSION_FIELDS: ReadonlyMap<string, readonly Field[]> = new Map<string, readonly Field[]>([
  ['posix-rename@openssh.com', ['path', 'path']],
  ['hardlink@openssh.com', ['path', 'path']],
  ['statvfs@openssh.com', ['path']],
  ['fstatvfs@openssh.com', ['handle']],
  ['fsync@openssh.com', ['handle']],
  ['lsetstat@openssh.com', ['path']],
  ['expand-path@openssh.com', ['path']],
  ['copy-data', ['handle', 'uint64', 'uint64', 'handle']],
]);

export type SftpFrames = { readonly ok: true; readonly packets: readonly Buffer[] } | { readonly ok: false; readonly reason: string };

/**
 * Splits an SFTP byte stream into packets (uint32 length, then type byte and payload), whatever the
 * chunking. A length of zero or over MAX_SFTP_PACKET_BYTES is an error that ends the stream.
 */
export class SftpFramer {
  private readonly header = Buffer.alloc(4);
  private headerFilled = 0;
  private packet: Buffer | undefined;
  private packetFilled = 0;

  push(chunk: Buffer): SftpFrames {
    const packets: Buffer[] = [];
    let offset = 0;
    while (offset < chunk.length) {
      if (this.packet === undefined) {
        const take = Math.min(4 - this.headerFilled, chunk.length - offset);
        chunk.copy(this.header, this.headerFilled, offset, offset + take);
        this.headerFilled += take;
        offset += take;
        if (this.headerFilled < 4) break;
        this.headerFilled = 0;
        const length = this.header.readUInt32BE(0);
        if (length === 0) return { ok: false, reason: 'an empty SFTP packet' };
        if (length > MAX_SFTP_PACKET_BYTES) return { ok: false, reason: `an SFTP packet of ${length} bytes, over the limit of ${MAX_SFTP_PACKET_BYTES}` };
        this.packet = Buffer.allocUnsafe(length);
        this.packetFilled = 0;
      }
      const take = Math.min(this.packet.length - this.packetFilled, chunk.length - offset);
      chunk.copy(this.packet, this.packetFilled, offset, offset + take);
      this.packetFilled += take;
      offset += take;
      if (this.packetFilled === this.packet.length) {
        packets.push(this.packet);
        this.packet = undefined;
      }
    }
    return { ok: true, packets };
  }
}

/** A packet (type byte and payload) with its uint32 length in front, ready to send. */
export function framedSftpPacket(packet: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(packet.length);
  return Buffer.concat([length, packet]);
}

/** An SSH_FXP_STATUS reply (framed) refusing or answering request `id`. */
export function sftpStatusPacket(id: number, code: number, message: string): Buffer {
  const numbers = Buffer.alloc(1 + 4 + 4);
  numbers.writeUInt8(SFTP_PACKET.status, 0);
  numbers.writeUInt32BE(id, 1);
  numbers.writeUInt32BE(code, 5);
  // The message, then an empty language tag.
  return framedSftpPacket(Buffer.concat([numbers, sshString(Buffer.from(message, 'utf8')), sshString('')]));
}

export type SftpClientPacket =
  | { readonly kind: 'init'; readonly version: number }
  | { readonly kind: 'request'; readonly id: number; readonly request: SftpRequest }
  /** A packet that cannot be read; `id` when it got that far (the relay can answer it with a STATUS). */
  | { readonly kind: 'malformed'; readonly id?: number; readonly reason: string };

/**
 * Follows one SFTP channel: decodes the client's requests into what `classifySftp` judges, and reads
 * the server's replies for the handles that OPEN and OPENDIR return (so a WRITE names its file) and
 * for the directory that `REALPATH "."` names (so relative paths resolve as the server will).
 */
export class SftpRequestTracker {
  private readonly handles = new Map<string, string>();
  private readonly opening = new Map<number, string>();
  private home: string | undefined;
  private homeRequest: number | undefined;

  request(packet: Buffer): SftpClientPacket {
    const type = packet[0];
    const cursor = new SshWireReader(packet.subarray(1));
    if (type === SFTP_PACKET.init) {
      const version = cursor.uint32();
      return version === undefined ? { kind: 'malformed', reason: 'a short INIT' } : { kind: 'init', version };
    }
    const id = cursor.uint32();
    if (id === undefined) return { kind: 'malformed', reason: `a packet of type ${type} without a request id` };
    let op: SftpOperationName;
    let fields: readonly Field[];
    let extension: string | undefined;
    if (type === SFTP_PACKET.extended) {
      const name = cursor.string();
      if (name === undefined) return { kind: 'malformed', id, reason: 'an EXTENDED request without a name' };
      op = 'extended';
      extension = name.toString('utf8');
      fields = EXTENSION_FIELDS.get(extension) ?? [];
    } else {
      const layout = type === undefined ? undefined : REQUEST_LAYOUTS.get(type);
      if (layout === undefined) return { kind: 'malformed', id, reason: `an unknown request type ${type}` };
      ({ op, fields } = layout);
    }
    const paths: string[] = [];
    let flags: number | undefined;
    const short = (): SftpClientPacket => ({ kind: 'malformed', id, reason: `a short ${op}` });
    for (const field of fields) {
      if (field === 'uint64') {
        if (cursor.uint32() === undefined || cursor.uint32() === undefined) return short();
        continue;
      }
      if (field === 'uint32' || field === 'flags') {
        const value = cursor.uint32();
        if (value === undefined) return short();
        if (field === 'flags') flags = value;
        continue;
      }
      const bytes = cursor.string();
      if (bytes === undefined) return short();
      if (field === 'path') paths.push(this.resolve(bytes.toString('utf8')));
      if (field === 'handle') {
        const key = bytes.toString('latin1');
        const path = this.handles.get(key);
        if (path !== undefined) paths.push(path);
        if (op === 'close') this.handles.delete(key);
      }
    }
    const tracked = this.track(op, id, paths);
    if (tracked !== undefined) return { kind: 'malformed', id, reason: tracked };
    return { kind: 'request', id, request: { op, paths, ...(flags === undefined ? {} : { flags }), ...(extension === undefined ? {} : { extension }) } };
  }

  /** A server packet: learns handles and the home directory; replies it does not need are ignored. */
  response(packet: Buffer): void {
    const cursor = new SshWireReader(packet.subarray(1));
    const id = cursor.uint32();
    if (id === undefined) return;
    const path = this.opening.get(id);
    this.opening.delete(id);
    if (packet[0] === SFTP_PACKET.handle && path !== undefined) {
      const handle = cursor.string();
      if (handle !== undefined) this.handles.set(handle.toString('latin1'), path);
    }
    if (id === this.homeRequest) {
      this.homeRequest = undefined;
      const count = packet[0] === SFTP_PACKET.name ? cursor.uint32() : undefined;
      const name = count === 1 ? cursor.string()?.toString('utf8') : undefined;
      if (name?.startsWith('/')) this.home = posix.normalize(name);
    }
  }

  private track(op: SftpOperationName, id: number, paths: readonly string[]): string | undefined {
    if ((op === 'open' || op === 'opendir') && paths[0] !== undefined) {
      if (this.handles.size + this.opening.size >= MAX_SFTP_TRACKED_HANDLES) return `more than ${MAX_SFTP_TRACKED_HANDLES} open handles`;
      // Two opens awaiting replies under one id would let the first reply's handle name the second's path.
      if (this.opening.has(id)) return `request id ${id} is already awaiting a handle`;
      this.opening.set(id, paths[0]);
    }
    if (op === 'realpath' && this.home === undefined && (paths[0] === '.' || paths[0] === '')) this.homeRequest = id;
    return undefined;
  }

  /** Absolute paths normalized (`/tmp/../etc` is `/etc`); relative ones joined to the home once known. */
  private resolve(path: string): string {
    if (path.startsWith('/')) return posix.normalize(path);
    return this.home === undefined ? posix.normalize(path) : posix.join(this.home, path);
  }
}
