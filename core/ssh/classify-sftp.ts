/**
 * SFTP requests classified at the protocol level (draft-ietf-secsh-filexfer-02, version 3, the one
 * OpenSSH speaks, plus its extensions). The relay names each request; no shell is involved.
 */

/** SSH_FXF_* bits of an OPEN request's pflags. */
export const SFTP_OPEN_FLAGS = { read: 0x01, write: 0x02, append: 0x04, create: 0x08, truncate: 0x10, exclusive: 0x20 } as const;

/** Request types by the names ssh2's SFTP server events use (lower case). */
export const SFTP_OPERATIONS = [
  'open', 'close', 'read', 'write', 'lstat', 'fstat', 'setstat', 'fsetstat', 'opendir', 'readdir', 'remove', 'mkdir', 'rmdir', 'realpath', 'stat',
  'rename', 'readlink', 'symlink', 'link', 'extended',
] as const;
export type SftpOperationName = (typeof SFTP_OPERATIONS)[number];

export interface SftpRequest {
  readonly op: SftpOperationName;
  /** The paths the request names; for a handle (read, write, fstat, ...) the path it was opened on. */
  readonly paths: readonly string[];
  /** OPEN's pflags (SFTP_OPEN_FLAGS bits). */
  readonly flags?: number;
  /** EXTENDED's request name, e.g. `posix-rename@openssh.com`. */
  readonly extension?: string;
}

export interface SftpClassification {
  readonly class: 'read' | 'write';
  readonly reason: string;
  readonly paths: readonly string[];
}

/** Requests that only read a file, its attributes or a directory; CLOSE ends either kind of handle. */
const READ_OPERATIONS = new Set<string>(['close', 'read', 'lstat', 'fstat', 'opendir', 'readdir', 'realpath', 'stat', 'readlink']);
/** OpenSSH and filexfer extensions that only report; every other extension (posix-rename, hardlink, fsync, lsetstat, copy-data, ...) is a write. */
const READ_EXTENSIONS = new Set([
  'statvfs@openssh.com', 'fstatvfs@openssh.com', 'limits@openssh.com', 'expand-path@openssh.com', 'home-directory', 'users-groups-by-id@openssh.com',
  'check-file-name', 'check-file-handle', 'space-available', 'vendor-id',
]);

/**
 * Read extensions answered from a file's bytes (hashes of ranges as small as 256 bytes): the target
 * computes them from the file as stored, so a caller whose reads are masked must not get them.
 */
export const CONTENT_DIGEST_EXTENSIONS: ReadonlySet<string> = new Set(['check-file-name', 'check-file-handle']);

/** Whether one SFTP request reads or writes. Anything not known to be a read is a write. */
export function classifySftp(request: SftpRequest): SftpClassification {
  const paths = request.paths;
  const verdict = (cls: 'read' | 'write', reason: string): SftpClassification => ({ class: cls, reason, paths });
  if (request.op === 'open') {
    const flags = request.flags;
    if (flags === undefined || !Number.isInteger(flags)) return verdict('write', 'OPEN without flags');
    if (flags === SFTP_OPEN_FLAGS.read) return verdict('read', 'OPEN for reading');
    const named = Object.entries(SFTP_OPEN_FLAGS)
      .filter(([name, bit]) => name !== 'read' && (flags & bit) !== 0)
      .map(([name]) => name);
    return verdict('write', named.length > 0 ? `OPEN for ${named.join(', ')}` : `OPEN with flags 0x${flags.toString(16)}`);
  }
  if (request.op === 'extended') {
    const name = request.extension ?? '';
    return READ_EXTENSIONS.has(name) ? verdict('read', `${name} only reports`) : verdict('write', `extension ${name.slice(0, 80) || '(unnamed)'} is not known to be read-only`);
  }
  if (READ_OPERATIONS.has(request.op)) return verdict('read', `${request.op.toUpperCase()} only reads`);
  return verdict('write', `${String(request.op).slice(0, 40).toUpperCase()} changes files`);
}
