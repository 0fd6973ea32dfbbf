import { classifySftp, SFTP_OPEN_FLAGS as F, type SftpRequest } from '../../core/ssh/classify-sftp';

const open = (flags: number | undefined): SftpRequest => ({ op: 'open', paths: ['/srv/file'], ...(flags === undefined ? {} : { flags }) });

describe('classifySftp', () => {
  it.each<[string, SftpRequest, 'read' | 'write', string]>([
    ['an OPEN for reading', open(F.read), 'read', 'OPEN for reading'],
    ['an OPEN for writing', open(F.write), 'write', 'OPEN for write'],
    ['an OPEN for reading and writing', open(F.read | F.write), 'write', 'OPEN for write'],
    ['an OPEN for append', open(F.read | F.append), 'write', 'OPEN for append'],
    ['an OPEN that creates', open(F.read | F.create), 'write', 'OPEN for create'],
    ['an OPEN that truncates', open(F.read | F.truncate), 'write', 'OPEN for truncate'],
    ['an upload (write, create, truncate)', open(F.write | F.create | F.truncate), 'write', 'OPEN for write, create, truncate'],
    ['an exclusive create', open(F.write | F.create | F.exclusive), 'write', 'OPEN for write, create, exclusive'],
    ['an OPEN without the read flag', open(0), 'write', 'OPEN with flags 0x0'],
    ['an OPEN with an unknown flag bit', open(F.read | 0x40), 'write', 'OPEN with flags 0x41'],
    ['an OPEN without flags', open(undefined), 'write', 'OPEN without flags'],
    ['an OPEN with fractional flags', open(1.5), 'write', 'OPEN without flags'],
    ['READ', { op: 'read', paths: ['/srv/file'] }, 'read', 'READ only reads'],
    ['WRITE', { op: 'write', paths: ['/srv/file'] }, 'write', 'WRITE changes files'],
    ['CLOSE', { op: 'close', paths: ['/srv/file'] }, 'read', 'CLOSE only reads'],
    ['STAT', { op: 'stat', paths: ['/srv'] }, 'read', 'STAT only reads'],
    ['LSTAT', { op: 'lstat', paths: ['/srv'] }, 'read', 'LSTAT only reads'],
    ['FSTAT', { op: 'fstat', paths: ['/srv/file'] }, 'read', 'FSTAT only reads'],
    ['OPENDIR', { op: 'opendir', paths: ['/srv'] }, 'read', 'OPENDIR only reads'],
    ['READDIR', { op: 'readdir', paths: ['/srv'] }, 'read', 'READDIR only reads'],
    ['REALPATH', { op: 'realpath', paths: ['.'] }, 'read', 'REALPATH only reads'],
    ['READLINK', { op: 'readlink', paths: ['/srv/link'] }, 'read', 'READLINK only reads'],
    ['REMOVE', { op: 'remove', paths: ['/srv/file'] }, 'write', 'REMOVE changes files'],
    ['RENAME', { op: 'rename', paths: ['/srv/a', '/srv/b'] }, 'write', 'RENAME changes files'],
    ['MKDIR', { op: 'mkdir', paths: ['/srv/d'] }, 'write', 'MKDIR changes files'],
    ['RMDIR', { op: 'rmdir', paths: ['/srv/d'] }, 'write', 'RMDIR changes files'],
    ['SETSTAT', { op: 'setstat', paths: ['/srv/file'] }, 'write', 'SETSTAT changes files'],
    ['FSETSTAT', { op: 'fsetstat', paths: ['/srv/file'] }, 'write', 'FSETSTAT changes files'],
    ['SYMLINK', { op: 'symlink', paths: ['/srv/l', '/etc/shadow'] }, 'write', 'SYMLINK changes files'],
    ['LINK', { op: 'link', paths: ['/srv/l', '/etc/shadow'] }, 'write', 'LINK changes files'],
    ['posix-rename', { op: 'extended', extension: 'posix-rename@openssh.com', paths: ['/a', '/b'] }, 'write', 'extension posix-rename@openssh.com is not known to be read-only'],
    ['hardlink', { op: 'extended', extension: 'hardlink@openssh.com', paths: ['/a', '/b'] }, 'write', 'extension hardlink@openssh.com is not known to be read-only'],
    ['fsync', { op: 'extended', extension: 'fsync@openssh.com', paths: ['/a'] }, 'write', 'extension fsync@openssh.com is not known to be read-only'],
    ['lsetstat', { op: 'extended', extension: 'lsetstat@openssh.com', paths: ['/a'] }, 'write', 'extension lsetstat@openssh.com is not known to be read-only'],
    ['an unknown extension', { op: 'extended', extension: 'frobnicate@example.com', paths: [] }, 'write', 'extension frobnicate@example.com is not known to be read-only'],
    ['an unnamed extension', { op: 'extended', paths: [] }, 'write', 'extension (unnamed) is not known to be read-only'],
    ['statvfs', { op: 'extended', extension: 'statvfs@openssh.com', paths: ['/'] }, 'read', 'statvfs@openssh.com only reports'],
    ['limits', { op: 'extended', extension: 'limits@openssh.com', paths: [] }, 'read', 'limits@openssh.com only reports'],
    ['expand-path', { op: 'extended', extension: 'expand-path@openssh.com', paths: ['~'] }, 'read', 'expand-path@openssh.com only reports'],
  ])('classes %s', (_what, request, cls, reason) => {
    expect(classifySftp(request)).toEqual({ class: cls, reason, paths: request.paths });
  });

  it('classes an OPEN as a read only with the read flag alone, for every combination of flags', () => {
    for (let flags = 0; flags < 0x80; flags++) {
      expect([flags, classifySftp(open(flags)).class]).toEqual([flags, flags === F.read ? 'read' : 'write']);
    }
  });

  it('classes an operation name it does not know as a write', () => {
    const request = { op: 'frobnicate', paths: ['/x'] } as unknown as SftpRequest;
    expect(classifySftp(request)).toEqual({ class: 'write', reason: 'FROBNICATE changes files', paths: ['/x'] });
  });
});
