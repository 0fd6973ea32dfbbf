import { createHash } from 'node:crypto';

/** The most an upload held for approval may hold in memory. */
export const MAX_HELD_UPLOAD_BYTES = 64 * 1024 * 1024;
/** What a reviewer sees of an upload's text: its first lines, within this many bytes. */
export const REVIEW_PREVIEW_LINES = 10;
export const REVIEW_PREVIEW_BYTES = 2048;

/**
 * A file a caller uploads over SFTP, kept by the agent until its CLOSE is judged: the reviewer sees its
 * path, size, SHA-256 and first lines, and the agent writes exactly these bytes on approval.
 */
export class HeldUpload {
  private readonly parts: { readonly offset: number; readonly data: Buffer }[] = [];
  private received = 0;
  mode: number | undefined;

  constructor(readonly path: string) {}

  /** Keeps one WRITE; false when the upload would pass MAX_HELD_UPLOAD_BYTES. */
  write(offset: number, data: Buffer): boolean {
    if (this.received + data.length > MAX_HELD_UPLOAD_BYTES || offset + data.length > MAX_HELD_UPLOAD_BYTES) return false;
    this.received += data.length;
    this.parts.push({ offset, data: Buffer.from(data) });
    return true;
  }

  /** The file as the writes left it (later writes over earlier ones, gaps as zeros, as a file would). */
  content(): Buffer {
    const size = this.parts.reduce((max, p) => Math.max(max, p.offset + p.data.length), 0);
    const file = Buffer.alloc(size);
    for (const p of this.parts) p.data.copy(file, p.offset);
    return file;
  }

  /** What the reviewer reads: the operation, path, size, SHA-256 and the first lines (or that it is binary). */
  static review(path: string, content: Buffer): string {
    const sha256 = createHash('sha256').update(content).digest('hex');
    const head = content.subarray(0, REVIEW_PREVIEW_BYTES);
    const preview = head.includes(0)
      ? '(binary content)'
      : head.toString('utf8').split('\n').slice(0, REVIEW_PREVIEW_LINES).join('\n');
    return `sftp upload ${path}\nsize: ${content.length} bytes\nsha256: ${sha256}\nfirst lines:\n${preview}`;
  }
}
