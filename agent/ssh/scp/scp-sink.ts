import { posix } from 'node:path';
import type { ScpSinkCommand } from '../../../core/ssh/scp-sink-command';
import { judgedPath } from '../paths';
import { HeldUpload, MAX_HELD_UPLOAD_BYTES } from '../sftp/held-upload';
import { shown } from '../sftp/review-text';
import type { BytePuller } from './byte-puller';

/** The longest record line (`C0644 123 name`, `D0755 0 name`, `T...`) the sink reads: a file name is at most 255 bytes. */
export const MAX_SCP_RECORD_BYTES = 1024;
/** Files and directories one upload may send. */
export const MAX_SCP_ENTRIES = 256;
/** How deep directories (`scp -r`) may nest. */
export const MAX_SCP_DEPTH_DIRS = 16;

/** scp's replies (scp.c `response`): a zero byte for yes, `\x01` and a line for an error the source reports and goes on from. */
const OK = Buffer.from([0]);
const refusal = (message: string): string => `\x01${message}\n`;

const TIMES = /^T[0-9]{1,20} [0-9]{1,6} [0-9]{1,20} [0-9]{1,6}$/;
const ENTRY = /^([CD])([0-7]{4}) ([0-9]{1,19}) (.+)$/;

export type PathKind = 'directory' | 'file' | 'missing';

export interface ScpSinkDeps {
  /** Whose upload it is (a principal key): held bytes count against that caller's share. */
  readonly owner: string;
  send(bytes: Buffer | string): void;
  /** What a path is on the target (as the read login sees it). */
  kind(path: string): Promise<PathKind>;
  /** A refusal when the policy denies writing at `path` at all (asked before the caller sends the bytes). */
  denied(path: string): string | undefined;
  /** Judged and, once allowed or approved, run on the write login: a refusal message, or undefined when done. */
  mkdir(path: string, mode: number): Promise<string | undefined>;
  upload(path: string, content: Buffer, mode: number): Promise<string | undefined>;
}

/** A record the sink does not understand, or a stream that broke off: the upload ends. */
class ScpProtocolError extends Error {
  override readonly name = 'ScpProtocolError';
}

interface Directory {
  readonly path: string;
  /** Whether entries go inside it (else the one file sent is written at `path` itself). */
  readonly inside: boolean;
}

/**
 * The sink half of the legacy scp protocol (`scp -t`, what `scp -O` runs for an upload), spoken by the
 * agent toward the caller: each file (`C` record, its bytes, a zero byte) is kept and judged as a whole
 * like an SFTP upload, each new directory (`D`, with -r) like an SFTP mkdir; times (`T`) are read and
 * not applied. A refused entry gets an `\x01` line (the client reports it and goes on with the next);
 * a record the sink does not understand ends the upload. Returns the exit status.
 */
export async function serveScpSink(input: BytePuller, command: ScpSinkCommand, deps: ScpSinkDeps): Promise<number> {
  const top = judgedPath(command.path, 'write', true, 'scp');
  if ('refusal' in top) return fatal(deps, top.refusal);
  const kind = await deps.kind(top.path);
  if (command.directory && kind !== 'directory') return fatal(deps, `twokey: ${shown(top.path)} is not a directory`);
  const sink = new ScpSink(input, command, deps, [{ path: top.path, inside: kind === 'directory' }]);
  deps.send(OK);
  try {
    return await sink.run();
  } catch (e) {
    if (e instanceof ScpProtocolError) return fatal(deps, `twokey: ${e.message}`);
    throw e;
  }
}

function fatal(deps: ScpSinkDeps, message: string): number {
  deps.send(refusal(message));
  return 1;
}

class ScpSink {
  private entries = 0;
  private errors = 0;

  constructor(
    private readonly input: BytePuller,
    private readonly command: ScpSinkCommand,
    private readonly deps: ScpSinkDeps,
    private readonly dirs: Directory[],
  ) {}

  async run(): Promise<number> {
    for (;;) {
      const line = await this.input.line(MAX_SCP_RECORD_BYTES);
      if (line === undefined) return this.errors ? 1 : 0;
      if (line === 'too-long') throw new ScpProtocolError(`an scp record longer than ${MAX_SCP_RECORD_BYTES} bytes`);
      const record = line.toString('utf8');
      const type = record[0];
      if (type === '\x01') {
        // The source could not read one of its files and goes on.
        this.errors++;
        continue;
      }
      if (type === '\x02') return 1;
      if (type === 'E' && record === 'E') {
        // The end of a directory; at the top, the end of the upload.
        if (this.dirs.length > 1) this.dirs.pop();
        this.deps.send(OK);
        continue;
      }
      if (type === 'T' && TIMES.test(record)) {
        this.deps.send(OK);
        continue;
      }
      const entry = ENTRY.exec(record);
      if (!entry) throw new ScpProtocolError(`an scp record it does not understand (${shown(record.slice(0, 40))})`);
      if (++this.entries > MAX_SCP_ENTRIES) throw new ScpProtocolError(`more than ${MAX_SCP_ENTRIES} files and directories in one upload`);
      const [, letter, octal = '', size = '', name = ''] = entry;
      await (letter === 'D' ? this.directory(name, parseInt(octal, 8)) : this.file(name, parseInt(octal, 8), Number(size)));
    }
  }

  /** Where an entry named `name` goes; the name is one path segment (scp.c refuses `/`, `.` and `..` too). */
  private placed(name: string): { readonly path: string } | { readonly refusal: string } {
    if (name.includes('/') || name === '.' || name === '..') return { refusal: `twokey: scp sent an unsafe name ${shown(name)}` };
    const here = this.dirs[this.dirs.length - 1] as Directory;
    return judgedPath(here.inside ? posix.join(here.path, name) : here.path, 'write', true, 'scp');
  }

  private refuse(message: string): void {
    this.errors++;
    this.deps.send(refusal(message));
  }

  private async directory(name: string, mode: number): Promise<void> {
    if (!this.command.recursive) throw new ScpProtocolError('a directory sent without -r');
    if (this.dirs.length > MAX_SCP_DEPTH_DIRS) throw new ScpProtocolError(`directories nested deeper than ${MAX_SCP_DEPTH_DIRS}`);
    const placed = this.placed(name);
    if ('refusal' in placed) return this.refuse(placed.refusal);
    const kind = await this.deps.kind(placed.path);
    if (kind === 'file') return this.refuse(`twokey: ${shown(placed.path)} is not a directory`);
    if (kind === 'missing') {
      // As scp.c's sink does, the owner may always enter and fill a directory it made (mode | 0700).
      const refused = this.deps.denied(placed.path) ?? (await this.deps.mkdir(placed.path, (mode & 0o7777) | 0o700));
      // The source skips a directory refused here, with everything in it.
      if (refused) return this.refuse(refused);
    }
    this.dirs.push({ path: placed.path, inside: true });
    this.deps.send(OK);
  }

  private async file(name: string, mode: number, size: number): Promise<void> {
    const placed = this.placed(name);
    // Refused before its bytes are sent: the source then skips the file.
    if ('refusal' in placed) return this.refuse(placed.refusal);
    if (size > MAX_HELD_UPLOAD_BYTES) return this.refuse(`twokey: ${shown(placed.path)} is larger than an approval can hold (${MAX_HELD_UPLOAD_BYTES} bytes)`);
    const denied = this.deps.denied(placed.path);
    if (denied) return this.refuse(denied);
    this.deps.send(OK);
    const upload = new HeldUpload(placed.path, this.deps.owner);
    try {
      let kept = true;
      for (let offset = 0; offset < size; ) {
        const data = await this.input.take(size - offset);
        if (!data) throw new ScpProtocolError('the upload ended inside a file');
        // Past the budget of all held uploads the rest is read and dropped, then the file refused.
        kept = kept && upload.write(offset, data) === 'kept';
        offset += data.length;
      }
      const status = await this.input.byte();
      if (status === undefined) throw new ScpProtocolError('the upload ended inside a file');
      // After the bytes: a zero byte, or the source's error line (`\x01` or `\x02` and a message) when it could not read them.
      if (status !== 0 && status !== 1 && status !== 2) throw new ScpProtocolError('a file not followed by its zero byte');
      if (status !== 0) {
        await this.input.line(MAX_SCP_RECORD_BYTES);
        return this.refuse(`twokey: ${shown(placed.path)} was not written (scp could not read all of it)`);
      }
      if (!kept) return this.refuse('twokey: the upload is larger than the agent can hold now');
      const refused = await this.deps.upload(placed.path, upload.content(), mode & 0o7777);
      if (refused) return this.refuse(refused);
      this.deps.send(OK);
    } finally {
      upload.release();
    }
  }
}
