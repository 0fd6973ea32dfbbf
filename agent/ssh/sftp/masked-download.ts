import type { SFTPWrapper } from 'ssh2';
import type { SessionMaskingHandle } from '../../sessions/session-masking';

/** The largest file a masked caller may download over SFTP: the agent reads and masks it whole first. */
export const MAX_MASKED_DOWNLOAD_BYTES = 16 * 1024 * 1024;
/** The most one READ of a masked download returns (OpenSSH's sftp-server caps its reads alike). */
export const MAX_SFTP_READ_BYTES = 64 * 1024;
/** Bytes the agent asks the target for per READ while it loads a file to mask. */
const LOAD_CHUNK_BYTES = 32 * 1024;

/** Why a file could not be served masked; `message` is safe to show the caller. */
export class MaskedDownloadError extends Error {
  override name = 'MaskedDownloadError';
  constructor(
    message: string,
    /** The SFTP status code the target gave, when it refused. */
    readonly code?: number,
  ) {
    super(message);
  }
}

/**
 * A file a masked caller downloads over SFTP. Masking a file per READ would miss a secret split across
 * two reads (or read at an odd offset), so the agent reads it whole on the read login, masks it as one
 * text, and serves the caller's READs from the masked copy. Masked content is UTF-8 text, as masked
 * terminal output is.
 */
export class MaskedDownload {
  private constructor(
    readonly path: string,
    readonly content: Buffer,
    readonly mode: number,
  ) {}

  /** Up to `length` bytes (at most MAX_SFTP_READ_BYTES) at `offset`, or undefined past the end (SFTP's EOF). */
  read(offset: number, length: number): Buffer | undefined {
    if (offset >= this.content.length) return undefined;
    return this.content.subarray(offset, Math.min(this.content.length, offset + Math.min(length, MAX_SFTP_READ_BYTES)));
  }

  /** Reads `path` on the read login (a regular file within MAX_MASKED_DOWNLOAD_BYTES) and masks it. */
  static async load(sftp: SFTPWrapper, path: string, masking: SessionMaskingHandle): Promise<MaskedDownload> {
    const call = <T>(run: (done: (e: Error | null | undefined, value: T) => void) => void): Promise<T> =>
      new Promise<T>((resolve, reject) => run((e, value) => (e ? reject(new MaskedDownloadError(e.message, (e as { code?: number }).code)) : resolve(value))));
    const handle = await call<Buffer>((done) => sftp.open(path, 'r', done));
    try {
      const attrs = await call<{ mode: number; size: number }>((done) => sftp.fstat(handle, done));
      if ((attrs.mode & 0o170000) !== 0o100000) throw new MaskedDownloadError(`${path} is not a regular file`);
      const parts: Buffer[] = [];
      let size = 0;
      for (;;) {
        const chunk = await call<Buffer>((done) => sftp.read(handle, Buffer.alloc(LOAD_CHUNK_BYTES), 0, LOAD_CHUNK_BYTES, size, (e, n, buf) => done(e, e ? Buffer.alloc(0) : buf.subarray(0, n))));
        if (chunk.length === 0) break;
        size += chunk.length;
        if (size > MAX_MASKED_DOWNLOAD_BYTES) throw new MaskedDownloadError(`${path} is larger than a masked download may be (${MAX_MASKED_DOWNLOAD_BYTES} bytes)`);
        parts.push(chunk);
      }
      const masker = masking.stream();
      const text = masker.push(Buffer.concat(parts).toString('utf8')) + masker.flush();
      return new MaskedDownload(path, Buffer.from(text, 'utf8'), attrs.mode);
    } finally {
      sftp.close(handle, () => undefined);
    }
  }
}
