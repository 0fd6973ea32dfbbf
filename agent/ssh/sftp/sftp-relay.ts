import type { ClientChannel, ServerChannel, SFTPWrapper } from 'ssh2';
import { classifySftp } from '../../../core/ssh/classify-sftp';
import { decideAndRecord, judgeFileChange, type JudgeDeps } from '../judge';
import { HeldUpload } from './held-upload';
import { framed, handlePacket, parseReply, parseRequest, SftpFramer, SFTP_STATUS, SFTP_TYPE, statusPacket, type SftpRequestPacket } from './packets';

/** Handles (upstream and held uploads) one SFTP channel may hold open. */
export const MAX_SFTP_HANDLES = 256;
/** OPEN/OPENDIR requests awaiting the target's HANDLE reply. */
export const MAX_PENDING_OPENS = 256;

type Request = Extract<SftpRequestPacket, { kind: 'request' }>;

export interface SftpRelayDeps {
  readonly judge: JudgeDeps;
  /** The write login's SFTP session, opened for the first change that runs. */
  writer(): Promise<SFTPWrapper>;
  /** The relay could not go on (a packet over the limit, a malformed stream): the channel ends. */
  fail(reason: string): void;
}

/** A change as the agent runs it on the write login's SFTP session. */
type WriteRun = (sftp: SFTPWrapper, done: (e?: Error | null) => void) => void;

const UPLOAD_HANDLE_PREFIX = 'twokey-upload-';

/**
 * SFTP relayed per request (SFTP v3): reads (opens for reading, stats, listings, their handles) pass to
 * the target on the read login as they are; every request that changes files is judged by itself. An
 * upload is held by the agent (OPEN for write answers a handle of the agent's, WRITEs are kept) and
 * judged at its CLOSE with its size, SHA-256 and first lines; removes, renames, mkdir, rmdir and setstat
 * are judged as they come. What is allowed or approved runs on the write login from what the agent
 * kept; other changes (symlinks, links, unknown extensions) are refused.
 */
export class SftpRelay {
  private readonly fromCaller = new SftpFramer();
  private readonly fromTarget = new SftpFramer();
  /** OPEN/OPENDIR ids sent to the target, with their path (the HANDLE reply names it). */
  private readonly opening = new Map<number, string>();
  /** Upstream handles by hex, with the path they were opened on. */
  private readonly handles = new Map<string, string>();
  private readonly uploads = new Map<string, HeldUpload>();
  private nextUpload = 0;

  constructor(
    private readonly caller: ServerChannel,
    private readonly target: ClientChannel,
    private readonly deps: SftpRelayDeps,
  ) {
    caller.on('data', (chunk: Buffer) => this.onCallerBytes(chunk));
    target.on('data', (chunk: Buffer) => this.onTargetBytes(chunk));
    caller.on('end', () => target.end());
  }

  private send(bytes: Buffer): void {
    if (!this.caller.write(bytes)) {
      this.target.pause();
      this.caller.once('drain', () => this.target.resume());
    }
  }

  private forward(packet: Buffer): void {
    if (!this.target.write(framed(packet))) {
      this.caller.pause();
      this.target.once('drain', () => this.caller.resume());
    }
  }

  /** SFTP clients print a status code, not its message: the reason also goes to stderr. */
  private refuse(request: Request, message: string): void {
    this.deps.judge.notify(message);
    this.send(statusPacket(request.id, SFTP_STATUS.permissionDenied, message));
  }

  private onTargetBytes(chunk: Buffer): void {
    const cut = this.fromTarget.push(chunk);
    if ('tooLarge' in cut) return this.deps.fail(`the target sent an SFTP packet of ${cut.tooLarge} bytes`);
    for (const packet of cut.packets) {
      const reply = parseReply(packet);
      const path = reply.id === undefined ? undefined : this.opening.get(reply.id);
      if (reply.id !== undefined && path !== undefined) {
        this.opening.delete(reply.id);
        if (reply.type === SFTP_TYPE.handle && reply.handle) this.handles.set(reply.handle.toString('hex'), path);
      }
      this.send(framed(packet));
    }
  }

  private onCallerBytes(chunk: Buffer): void {
    const cut = this.fromCaller.push(chunk);
    if ('tooLarge' in cut) return this.deps.fail(`twokey: SFTP packet of ${cut.tooLarge} bytes is over the limit`);
    for (const packet of cut.packets) {
      const request = parseRequest(packet);
      if (request.kind === 'init') this.forward(packet);
      else if (request.kind === 'malformed') {
        if (request.id === undefined) return this.deps.fail('twokey: malformed SFTP packet');
        this.send(statusPacket(request.id, SFTP_STATUS.badMessage, 'twokey: malformed request'));
      } else this.onRequest(request, packet);
    }
  }

  private onRequest(request: Request, packet: Buffer): void {
    const handleKey = request.handle?.toString('hex');
    const upload = handleKey === undefined ? undefined : this.uploads.get(handleKey);
    if (upload && handleKey !== undefined) return this.onUploadRequest(request, upload, handleKey);
    const openedPath = handleKey === undefined ? undefined : this.handles.get(handleKey);
    if (request.handle && openedPath === undefined) return this.send(statusPacket(request.id, SFTP_STATUS.failure, 'twokey: no such handle'));
    const paths = openedPath === undefined ? request.paths : [openedPath];
    const classified = classifySftp({ op: request.op, paths, flags: request.flags, extension: request.extension });
    if (classified.class === 'read') {
      if (request.handle) {
        if (request.op === 'close' && handleKey !== undefined) this.handles.delete(handleKey);
        return this.forward(packet);
      }
      return this.onPathRead(request, packet, paths);
    }
    if (request.op === 'open') return this.openUpload(request, paths);
    void this.change(request, paths);
  }

  /** A read that names a path (open for reading, opendir, stat, ...): decided (blocks name paths), recorded, passed on. */
  private onPathRead(request: Request, packet: Buffer, paths: readonly string[]): void {
    const decision = decideAndRecord(this.deps.judge, { class: 'read', ssh: { subsystem: 'sftp', paths } }, `sftp ${request.op} ${paths.join(' ')}`);
    if (decision.kind !== 'allow') return this.refuse(request, decision.kind === 'deny' ? `twokey: ${decision.reason}` : 'twokey: reads needing approval are not served over SFTP');
    if (request.op === 'open' || request.op === 'opendir') {
      if (this.opening.size >= MAX_PENDING_OPENS || this.handles.size + this.uploads.size >= MAX_SFTP_HANDLES) {
        return this.send(statusPacket(request.id, SFTP_STATUS.failure, 'twokey: too many open handles'));
      }
      this.opening.set(request.id, paths[0] ?? '');
    }
    this.forward(packet);
  }

  /** OPEN for writing: refused at once if the policy denies writes there, else the agent holds the upload. */
  private openUpload(request: Request, paths: readonly string[]): void {
    const path = paths[0] ?? '';
    const judge = this.deps.judge;
    const decision = judge.agent.decide(judge.session.identity, judge.target, { class: 'write', ssh: { subsystem: 'sftp', paths } });
    if (decision.kind === 'deny') {
      decideAndRecord(judge, { class: 'write', ssh: { subsystem: 'sftp', paths } }, `sftp open ${path} for writing`);
      return this.refuse(request, `twokey: ${decision.reason}`);
    }
    if (this.handles.size + this.uploads.size >= MAX_SFTP_HANDLES) return this.send(statusPacket(request.id, SFTP_STATUS.failure, 'twokey: too many open handles'));
    const handle = Buffer.from(`${UPLOAD_HANDLE_PREFIX}${this.nextUpload++}`);
    const upload = new HeldUpload(path);
    upload.mode = request.attrs?.mode;
    this.uploads.set(handle.toString('hex'), upload);
    this.send(handlePacket(request.id, handle));
  }

  private onUploadRequest(request: Request, upload: HeldUpload, handleKey: string): void {
    switch (request.op) {
      case 'write':
        if (!upload.write(request.offset ?? 0, request.data ?? Buffer.alloc(0))) {
          this.uploads.delete(handleKey);
          return this.send(statusPacket(request.id, SFTP_STATUS.failure, 'twokey: the upload is larger than an approval can hold'));
        }
        return this.send(statusPacket(request.id, SFTP_STATUS.ok, ''));
      case 'fsetstat':
        if (request.attrs?.mode !== undefined) upload.mode = request.attrs.mode;
        return this.send(statusPacket(request.id, SFTP_STATUS.ok, ''));
      case 'close':
        this.uploads.delete(handleKey);
        return void this.finishUpload(request, upload);
      default:
        return this.send(statusPacket(request.id, SFTP_STATUS.opUnsupported, `twokey: ${request.op} on an upload the agent holds is not supported`));
    }
  }

  /** The upload's CLOSE: judged with what the reviewer must see, written on the write login once allowed or approved. */
  private async finishUpload(request: Request, upload: HeldUpload): Promise<void> {
    const content = upload.content();
    await this.runChange(request, [upload.path], HeldUpload.review(upload.path, content), (sftp, done) =>
      sftp.writeFile(upload.path, content, upload.mode === undefined ? {} : { mode: upload.mode & 0o7777 }, done),
    );
  }

  /** A request that changes files by path: judged, then run on the write login when it is one the agent can build. */
  private async change(request: Request, paths: readonly string[]): Promise<void> {
    const [a = '', b = ''] = paths;
    const op = request.extension ?? request.op;
    const text = `sftp ${op} ${paths.join(' ')}`;
    const mode = request.attrs?.mode;
    const runs: Record<string, WriteRun> = {
      remove: (s, done) => s.unlink(a, done),
      rmdir: (s, done) => s.rmdir(a, done),
      mkdir: (s, done) => s.mkdir(a, mode === undefined ? {} : { mode }, done),
      rename: (s, done) => s.rename(a, b, done),
      'posix-rename@openssh.com': (s, done) => s.ext_openssh_rename(a, b, done),
      setstat: (s, done) => (mode === undefined ? done() : s.chmod(a, mode & 0o7777, done)),
    };
    await this.runChange(request, paths, text, runs[op]);
  }

  private async runChange(request: Request, paths: readonly string[], text: string, run: WriteRun | undefined): Promise<void> {
    const verdict = await judgeFileChange(this.deps.judge, paths, text);
    if (this.deps.judge.signal.aborted) return;
    if (verdict.kind === 'refused') return this.refuse(request, verdict.message);
    if (!run) return this.send(statusPacket(request.id, SFTP_STATUS.opUnsupported, `twokey: ${request.extension ?? request.op} is not relayed`));
    try {
      const sftp = await this.deps.writer();
      await new Promise<void>((resolve, reject) => run(sftp, (e) => (e ? reject(e) : resolve())));
      this.send(statusPacket(request.id, SFTP_STATUS.ok, ''));
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      this.send(statusPacket(request.id, typeof code === 'number' ? code : SFTP_STATUS.failure, `twokey: the write login could not do it (${(e as Error).message})`));
    }
  }
}
