import { createHash } from 'node:crypto';
import { shown } from './review-text';

/** The most an upload held for approval may hold in memory. */
export const MAX_HELD_UPLOAD_BYTES = 64 * 1024 * 1024;
/** The most all held uploads of the agent together may hold (many channels each under the cap above must not exhaust memory). */
export const MAX_HELD_UPLOADS_TOTAL_BYTES = 256 * 1024 * 1024;
/** The most one caller's held uploads may hold together: one caller stalling uploads cannot take every other caller's share. */
export const MAX_HELD_UPLOADS_PER_CALLER_BYTES = 96 * 1024 * 1024;

/** Bytes held by every upload of this process, and by each caller's (principal key). */
let heldTotal = 0;
const heldByCaller = new Map<string, number>();
/** Lines of an upload's text a reviewer sees... */
export const REVIEW_PREVIEW_LINES = 10;
/** ...within this many bytes. */
export const REVIEW_PREVIEW_BYTES = 2048;
/** A file mode's permission bits (with setuid, setgid, sticky), as a change sets them. */
export const PERMISSION_BITS = 0o7777;

/**
 * A file a caller uploads over SFTP (or scp), kept by the agent until its CLOSE (or its end) is judged: the reviewer sees its
 * path, size, SHA-256 and first lines, and the agent writes exactly these bytes on approval.
 */
export class HeldUpload {
  private readonly parts: { readonly offset: number; readonly data: Buffer }[] = [];
  /** Bytes kept so far (what the caller sent, overlapping writes counted each time). */
  received = 0;
  /** The end of the bytes written so far; each WRITE starts within it. */
  private extent = 0;
  mode: number | undefined;

  constructor(
    readonly path: string,
    /** Whose upload it is (a principal key): counted against that caller's share. */
    private readonly owner: string,
  ) {}

  /**
   * Keeps one WRITE. `too-large`: the upload would pass MAX_HELD_UPLOAD_BYTES, its caller's uploads
   * MAX_HELD_UPLOADS_PER_CALLER_BYTES, or all uploads MAX_HELD_UPLOADS_TOTAL_BYTES; `gap`: it starts past what was written so far (the agent writes the
   * whole file, so a gap would become zeros over what the file held: a resume or a write into the
   * middle is not an upload it can hold).
   */
  write(offset: number, data: Buffer): 'kept' | 'too-large' | 'gap' {
    if (this.received + data.length > MAX_HELD_UPLOAD_BYTES || offset + data.length > MAX_HELD_UPLOAD_BYTES) return 'too-large';
    const callers = heldByCaller.get(this.owner) ?? 0;
    if (heldTotal + data.length > MAX_HELD_UPLOADS_TOTAL_BYTES || callers + data.length > MAX_HELD_UPLOADS_PER_CALLER_BYTES) return 'too-large';
    if (offset > this.extent) return 'gap';
    heldTotal += data.length;
    heldByCaller.set(this.owner, callers + data.length);
    this.received += data.length;
    this.extent = Math.max(this.extent, offset + data.length);
    this.parts.push({ offset, data: Buffer.from(data) });
    return 'kept';
  }

  /** Gives the held bytes back to the process's budget (the upload was closed, refused or its channel ended). Once. */
  release(): void {
    heldTotal -= this.received;
    const left = (heldByCaller.get(this.owner) ?? 0) - this.received;
    if (left > 0) heldByCaller.set(this.owner, left);
    else heldByCaller.delete(this.owner);
    this.received = 0;
    this.parts.length = 0;
  }

  /**
   * The file as the writes left it (later writes over earlier ones, as a file would).
   * Once: the parts are dropped; the bytes stay counted against the budget until `release`.
   */
  content(): Buffer {
    const file = Buffer.alloc(this.extent);
    for (const p of this.parts) p.data.copy(file, p.offset);
    this.parts.length = 0;
    return file;
  }

  /** What the reviewer reads: the operation (an SFTP or an scp upload), path, size, SHA-256 and the first lines (or that it is binary). */
  static review(path: string, content: Buffer, mode: number | undefined, via: 'sftp' | 'scp' = 'sftp'): string {
    const sha256 = createHash('sha256').update(content).digest('hex');
    const head = content.subarray(0, REVIEW_PREVIEW_BYTES);
    const preview = head.includes(0)
      ? '(binary content)'
      : head.toString('utf8').split('\n').slice(0, REVIEW_PREVIEW_LINES).join('\n');
    const shownMode = mode === undefined ? '' : ` mode ${(mode & PERMISSION_BITS).toString(8)}`;
    return `${via} upload ${shown(path)}${shownMode}\nsize: ${content.length} bytes\nsha256: ${sha256}\nfirst lines:\n${preview}`;
  }
}
