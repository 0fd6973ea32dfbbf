import { posix } from 'node:path';

/** Operations that only ask the target to resolve a path (a client's `cd ..` sends one): `..` may stay in them. */
const RESOLVING = new Set(['realpath', 'expand-path@openssh.com']);
/** Whether an SFTP operation (or extension name) asks the target to resolve a path: its answer names the path, judged then. */
export const resolvesPath = (op: string): boolean => RESOLVING.has(op);

/**
 * A path from an SFTP request (or an scp upload) as the relay judges and runs it. Policy globs see it with `.` segments
 * and repeated slashes collapsed. Refused: `..` segments (the target resolves them after symlinks, so
 * `/data/link/../etc` is not where its text points), a NUL (the target's C string ends there) or bytes
 * that are not UTF-8 (the judged text would not be the name the target opens), and a relative path
 * in a change (the write login's home is not the read login's, so it names another file).
 */
export function judgedPath(path: string, op: string, change: boolean, via: 'SFTP' | 'scp' = 'SFTP'): { readonly path: string } | { readonly refusal: string } {
  if (path.includes('\0') || path.includes('\uFFFD')) return { refusal: `twokey: ${via} paths with a NUL or bytes that are not UTF-8 are refused` };
  if (RESOLVING.has(op)) return { path };
  if (path.split('/').includes('..')) return { refusal: `twokey: ${via} paths with .. are refused; give the path without it` };
  if (change && !path.startsWith('/')) return { refusal: `twokey: changes over ${via} need an absolute path` };
  const normalized = posix.normalize(path);
  return { path: normalized.length > 1 && normalized.endsWith('/') ? normalized.slice(0, -1) : normalized };
}

/**
 * The paths a command line writes, as blocks match them: each as written and, when absolute, with
 * `.`, `..` and doubled slashes collapsed, so that `> //etc/x` or `> /tmp/../etc/x` meets a block on
 * `/etc/**` (a shell resolves them itself; a block matching either spelling refuses the line).
 */
export function blockSpellings(paths: readonly string[]): string[] {
  return [...new Set(paths.flatMap((p) => (p.startsWith('/') ? [p, posix.normalize(p)] : [p])))];
}
