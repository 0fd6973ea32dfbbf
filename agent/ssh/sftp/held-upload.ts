import { createHash } from 'node:crypto';

/** The most an upload held for approval may hold in memory. */
export const MAX_HELD_UPLOAD_BYTES = 64 * 1024 * 1024;
/** The most all held uploads of the agent together may hold (many channels each under the cap above must not exhaust memory). */
export const MAX_HELD_UPLOADS_TOTAL_BYTES = 256 * 1024 * 1024;

/** Bytes held by every upload of this process. */
let heldTotal = 0;
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

  /** Keeps one WRITE; false when the upload would pass MAX_HELD_UPLOAD_BYTES, or all uploads MAX_HELD_UPLOADS_TOTAL_BYTES. */
  write(offset: number, data: Buffer): boolean {
    if (this.received + data.length > MAX_HELD_UPLOAD_BYTES || offset + data.length > MAX_HELD_UPLOAD_BYTES) return false;
    if (heldTotal + data.length > MAX_HELD_UPLOADS_TOTAL_BYTES) return false;
    heldTotal += data.length;
    this.received += data.length;
    this.parts.push({ offset, data: Buffer.from(data) });
    return true;
  }

  /** Gives the held bytes back to the process's budget (the upload was closed, refused or its channel ended). Once. */
  release(): void {
    heldTotal -= this.received;
    this.received = 0;
    this.parts.length = 0;
  }

  /**
   * The file as the writes left it (later writes over earlier ones, gaps as zeros, as a file would).
   * Once: the parts are dropped; the bytes stay counted against the budget until `release`.
   */
  content(): Buffer {
    const size = this.parts.reduce((max, p) => Math.max(max, p.offset + p.data.length), 0);
    const file = Buffer.alloc(size);
    for (const p of this.parts) p.data.copy(file, p.offset);
    this.parts.length = 0;
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
