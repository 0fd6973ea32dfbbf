import type { ClientChannel, ServerChannel, SFTPWrapper } from 'ssh2';
import { classifySftp, CONTENT_DIGEST_EXTENSIONS, SFTP_OPEN_FLAGS } from '../../../core/ssh/classify-sftp';
import { principalKey } from '../../../core/identity/identity';
import { decideAndRecord, outrightRefusal, type JudgeDeps } from '../judge';
import type { SessionMaskingHandle } from '../../sessions/session-masking';
import { HeldUpload, PERMISSION_BITS } from './held-upload';

import { judgeAndWrite, type WriteRun } from './write-change';
import { MAX_MASKED_DOWNLOAD_BYTES, MaskedDownload, MaskedDownloadError } from './masked-download';
import { judgedPath, resolvesPath } from '../paths';
import { shown, sftpText } from './review-text';
import { SftpReplyStream } from './reply-stream';
import { appendJoined, attrsPacket, bodyOf, dataPacket, handlePacket, MAX_SFTP_PACKET_BYTES, parseReply, parseRequest, replyNames, SftpFramer, SFTP_STATUS, SFTP_TYPE, statusPacket, type SftpRequestPacket } from './packets';

/** The agent writes held bytes as the whole file: appends and resumes are refused with this. */
const WHOLE_FILES_ONLY = 'twokey: only whole-file uploads are held (written from the start, no append or resume)';

/** Handles (upstream and held uploads) one SFTP channel may hold open. */
export const MAX_SFTP_HANDLES = 256;
/** OPEN/OPENDIR requests awaiting the target's HANDLE reply. */
export const MAX_PENDING_OPENS = 256;
/** Bytes one SFTP channel may hold at once across its held uploads and masked downloads. */
export const MAX_SFTP_HELD_BYTES = 64 * 1024 * 1024;

type Request = Extract<SftpRequestPacket, { kind: 'request' }>;

export interface SftpRelayDeps {
  readonly judge: JudgeDeps;
  /** The write login's SFTP session, opened for the first change that runs. */
  writer(): Promise<SFTPWrapper>;
  /** The read login's SFTP session of the agent's own, opened for the first masked download. */
  reader(): Promise<SFTPWrapper>;
  /** The caller's masking: when active, files are read whole by the agent and served masked. */
  readonly masking: SessionMaskingHandle;
  /** The relay could not go on (a packet over the limit, a malformed stream): the channel ends. */
  fail(reason: string): void;
}

const UPLOAD_HANDLE_PREFIX = 'twokey-upload-';
const DOWNLOAD_HANDLE_PREFIX = 'twokey-masked-';

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
  private readonly fromTarget = new SftpReplyStream((_type, id) => this.onReplyHead(id));
  /** The agent's own replies, waiting for the end of the target's reply in progress (they cannot go inside it). */
  private queued: Buffer[] = [];
  /** Requests for the target cut from one read of the caller's bytes, sent together. */
  private outbox: Buffer[] = [];
  /** Why the caller's requests are not read now: its replies back up, or the target takes no more. */
  private readonly callerHolds = new Set<'output' | 'queued' | 'target'>();
  /** OPEN/OPENDIR ids sent to the target, with their path (the HANDLE reply names it). */
  private readonly opening = new Map<number, string>();
  /** Requests sent to the target and not answered yet, by id (a caller may reuse an id). */
  private readonly inFlight = new Map<number, number>();
  /**
   * REALPATH and expand-path ids sent to the target: the name it answers is judged before the caller
   * sees it (`/tmp/../etc/x`, a relative path or a symlink resolve on the target only). While one is
   * out, its id is not reused, so that no other reply can pass for its answer.
   */
  private readonly resolving = new Set<number>();
  /** Upstream handles by hex, with the path they were opened on. */
  private readonly handles = new Map<string, string>();
  private readonly uploads = new Map<string, HeldUpload>();
  private readonly downloads = new Map<string, MaskedDownload>();
  private nextHandle = 0;
  /** Bytes held now by this channel's uploads and masked downloads (MAX_SFTP_HELD_BYTES). */
  private held = 0;
  private failed = false;

  constructor(
    private readonly caller: ServerChannel,
    private readonly target: ClientChannel,
    private readonly deps: SftpRelayDeps,
  ) {
    caller.on('data', (chunk: Buffer) => this.onCallerBytes(chunk));
    target.on('data', (chunk: Buffer) => this.onTargetBytes(chunk));
    caller.on('end', () => target.end());
    caller.on('close', () => {
      for (const upload of this.uploads.values()) upload.release();
      this.uploads.clear();
    });
  }

  /** A reply of the agent's own: it goes between the target's replies. */
  private send(bytes: Buffer): void {
    if (this.fromTarget.atBoundary && this.queued.length === 0) return this.toCaller(bytes);
    this.queued.push(bytes);
    this.holdCaller('queued');
  }

  /** Like an SFTP server, the relay stops reading requests while the caller does not read its replies. */
  private toCaller(bytes: Buffer): void {
    if (this.caller.write(bytes) || this.callerHolds.has('output')) return;
    this.target.pause();
    this.holdCaller('output');
    this.caller.once('drain', () => {
      this.target.resume();
      this.releaseCaller('output');
    });
  }

  private forward(packet: Buffer): void {
    appendJoined(this.outbox, packet);
    if (packet[4] === SFTP_TYPE.init) return;
    const id = packet.readUInt32BE(5);
    this.inFlight.set(id, (this.inFlight.get(id) ?? 0) + 1);
  }

  /** A reply from the target starts: its request is answered; the relay reads it whole when it tracks the id. */
  private onReplyHead(id: number | undefined): boolean {
    if (id === undefined) return false;
    const left = (this.inFlight.get(id) ?? 0) - 1;
    if (left > 0) this.inFlight.set(id, left);
    else this.inFlight.delete(id);
    return this.opening.has(id) || this.resolving.has(id);
  }

  private flushOutbox(): void {
    const parts = this.outbox;
    this.outbox = [];
    for (const part of parts) {
      if (this.target.write(part) || this.callerHolds.has('target')) continue;
      this.holdCaller('target');
      this.target.once('drain', () => this.releaseCaller('target'));
    }
  }

  private holdCaller(reason: 'output' | 'queued' | 'target'): void {
    if (this.callerHolds.size === 0) this.caller.pause();
    this.callerHolds.add(reason);
  }

  private releaseCaller(reason: 'output' | 'queued' | 'target'): void {
    if (this.callerHolds.delete(reason) && this.callerHolds.size === 0) this.caller.resume();
  }

  /** SFTP clients print a status code, not its message: the reason also goes to stderr. */
  private refuse(request: Request, message: string): void {
    this.send(this.refusal(request.id, message));
  }

  /** A refusal's reply (PERMISSION_DENIED), its message also on the caller's stderr. */
  private refusal(id: number, message: string): Buffer {
    this.deps.judge.notify(message);
    return statusPacket(id, SFTP_STATUS.permissionDenied, message);
  }

  /** The answer to a request reusing the id of a path resolution still out (or that a resolution would reuse). */
  private idInUse(id: number): void {
    this.send(statusPacket(id, SFTP_STATUS.failure, `twokey: request id ${id} is waiting for its answer`));
  }

  /** Ends the relay once: what arrives after it is not read. */
  private fail(reason: string): void {
    if (this.failed) return;
    this.failed = true;
    this.deps.fail(reason);
  }

  private onTargetBytes(chunk: Buffer): void {
    if (this.failed) return;
    const cut = this.fromTarget.push(chunk);
    if ('invalidLength' in cut) return this.fail(`twokey: the target sent an SFTP packet length of ${cut.invalidLength} bytes`);
    for (const piece of cut.pieces) {
      // A whole piece is one reply the relay reads (and may answer otherwise); it ends on a boundary.
      const bytes = piece.whole ? this.readReply(piece.bytes) : piece.bytes;
      const boundary = piece.whole ? bytes.length : piece.boundary;
      if (this.queued.length === 0 || boundary === 0) {
        this.toCaller(bytes);
        continue;
      }
      this.toCaller(bytes.subarray(0, boundary));
      const queued = this.queued;
      this.queued = [];
      for (const reply of queued) this.toCaller(reply);
      this.releaseCaller('queued');
      if (boundary < bytes.length) this.toCaller(bytes.subarray(boundary));
    }
  }

  /**
   * A reply the relay tracks, and what the caller gets for it: a HANDLE names the path opened; a
   * resolved name is judged like a path the caller sent, and refused the same way.
   */
  private readReply(frame: Buffer): Buffer {
    const reply = parseReply(bodyOf(frame));
    if (reply.id === undefined) return frame;
    if (this.resolving.delete(reply.id)) return this.resolvedReply(frame, reply.id, reply.type);
    const path = this.opening.get(reply.id);
    if (path === undefined) return frame;
    this.opening.delete(reply.id);
    if (reply.type === SFTP_TYPE.handle && reply.handle) this.handles.set(reply.handle.toString('hex'), path);
    return frame;
  }

  private resolvedReply(frame: Buffer, id: number, type: number): Buffer {
    if (type === SFTP_TYPE.status) return frame;
    const names = type === SFTP_TYPE.name ? replyNames(bodyOf(frame)) : undefined;
    if (!names) return statusPacket(id, SFTP_STATUS.failure, 'twokey: the target answered a path resolution with something other than a name');
    const judged = names.map((name) => judgedPath(name, 'stat', false));
    const unfit = judged.find((j) => 'refusal' in j);
    const paths = judged.map((j) => ('path' in j ? j.path : ''));
    const decision = unfit ? undefined : decideAndRecord(this.deps.judge, { class: 'read', ssh: { subsystem: 'sftp', paths } }, `${sftpText('realpath', paths)} (the name the target resolved)`);
    if (decision?.kind === 'allow') return frame;
    return this.refusal(id, decision?.kind === 'deny' ? `twokey: ${decision.reason}` : 'twokey: the target resolved the path to a name that is refused');
  }

  private onCallerBytes(chunk: Buffer): void {
    if (this.failed) return;
    this.onRequests(chunk);
    this.flushOutbox();
  }

  private onRequests(chunk: Buffer): void {
    const cut = this.fromCaller.push(chunk);
    if ('invalidLength' in cut) return this.fail(`twokey: an SFTP packet length of ${cut.invalidLength} bytes is refused (limit ${MAX_SFTP_PACKET_BYTES})`);
    for (const packet of cut.packets) {
      const request = parseRequest(bodyOf(packet));
      if (request.kind === 'init') this.forward(packet);
      else if (request.kind === 'malformed') {
        if (request.id === undefined) return this.fail('twokey: malformed SFTP packet');
        this.send(statusPacket(request.id, SFTP_STATUS.badMessage, 'twokey: malformed request'));
      } else this.onRequest(request, packet);
    }
  }

  private onRequest(request: Request, packet: Buffer): void {
    if (this.resolving.has(request.id)) return this.idInUse(request.id);
    const handleKey = request.handle?.toString('hex');
    const upload = handleKey === undefined ? undefined : this.uploads.get(handleKey);
    if (upload && handleKey !== undefined) return this.onUploadRequest(request, upload, handleKey);
    const download = handleKey === undefined ? undefined : this.downloads.get(handleKey);
    if (download && handleKey !== undefined) return this.onDownloadRequest(request, download, handleKey);
    const openedPath = handleKey === undefined ? undefined : this.handles.get(handleKey);
    if (request.handle && openedPath === undefined) return this.send(statusPacket(request.id, SFTP_STATUS.failure, 'twokey: no such handle'));
    const classified = classifySftp({ op: request.op, paths: request.paths, flags: request.flags, extension: request.extension });
    if (this.deps.masking.active && request.extension !== undefined && CONTENT_DIGEST_EXTENSIONS.has(request.extension)) {
      return this.refuse(request, `twokey: ${request.extension} answers from the file as stored, unmasked; it is refused while your reads are masked`);
    }
    const judged = openedPath === undefined ? request.paths.map((p) => judgedPath(p, request.extension ?? request.op, classified.class === 'write')) : [{ path: openedPath }];
    const refusal = judged.find((j) => 'refusal' in j);
    if (refusal && 'refusal' in refusal) return this.refuse(request, refusal.refusal);
    const paths = judged.map((j) => ('path' in j ? j.path : ''));
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
    const decision = decideAndRecord(this.deps.judge, { class: 'read', ssh: { subsystem: 'sftp', paths } }, sftpText(request.op, paths));
    if (decision.kind !== 'allow') return this.refuse(request, decision.kind === 'deny' ? `twokey: ${decision.reason}` : 'twokey: reads needing approval are not served over SFTP');
    if (request.op === 'open' || request.op === 'opendir') {
      if (this.opening.size >= MAX_PENDING_OPENS || this.openHandles() >= MAX_SFTP_HANDLES) {
        return this.send(statusPacket(request.id, SFTP_STATUS.failure, 'twokey: too many open handles'));
      }
      if (request.op === 'open' && this.deps.masking.active) return void this.openMasked(request, paths[0] ?? '');
      this.opening.set(request.id, paths[0] ?? '');
    }
    if (resolvesPath(request.extension ?? request.op)) {
      if (this.inFlight.has(request.id)) return this.idInUse(request.id);
      this.resolving.add(request.id);
    }
    this.forward(packet);
  }

  /** OPEN for writing: refused at once if the policy denies writes there, else the agent holds the upload. */
  private openUpload(request: Request, paths: readonly string[]): void {
    const path = paths[0] ?? '';
    // The agent writes the held bytes as the whole file: an append would replace what the file held.
    if ((request.flags ?? 0) & SFTP_OPEN_FLAGS.append) return this.refuse(request, WHOLE_FILES_ONLY);
    const judge = this.deps.judge;
    const refusal = outrightRefusal(judge, { class: 'write', ssh: { subsystem: 'sftp', paths } }, `${sftpText('open', paths)} for writing`);
    if (refusal !== undefined) return this.refuse(request, refusal);
    if (this.openHandles() >= MAX_SFTP_HANDLES) return this.send(statusPacket(request.id, SFTP_STATUS.failure, 'twokey: too many open handles'));
    const handle = Buffer.from(`${UPLOAD_HANDLE_PREFIX}${this.nextHandle++}`);
    const upload = new HeldUpload(path, principalKey(judge.session.identity));
    upload.mode = request.attrs?.mode;
    this.uploads.set(handle.toString('hex'), upload);
    this.send(handlePacket(request.id, handle));
  }

  private onUploadRequest(request: Request, upload: HeldUpload, handleKey: string): void {
    switch (request.op) {
      case 'write': {
        const data = request.data ?? Buffer.alloc(0);
        const kept = this.held + data.length > MAX_SFTP_HELD_BYTES ? 'too-large' : upload.write(request.offset ?? 0, data);
        if (kept !== 'kept') {
          this.uploads.delete(handleKey);
          this.held -= upload.received;
          upload.release();
          const message = kept === 'gap' ? WHOLE_FILES_ONLY : 'twokey: the upload is larger than an approval can hold';
          return this.refuse(request, message);
        }
        this.held += data.length;
        return this.send(statusPacket(request.id, SFTP_STATUS.ok, ''));
      }
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

  private openHandles(): number {
    return this.handles.size + this.uploads.size + this.downloads.size;
  }

  /** OPEN for reading in a masked session: the agent reads the file whole, masks it and answers with a handle of its own. */
  private async openMasked(request: Request, path: string): Promise<void> {
    // A load may read up to MAX_MASKED_DOWNLOAD_BYTES: that much is set aside while it runs, so that
    // OPENs sent together cannot load more than the channel may hold.
    if (this.held + MAX_MASKED_DOWNLOAD_BYTES > MAX_SFTP_HELD_BYTES) return this.send(statusPacket(request.id, SFTP_STATUS.failure, 'twokey: too many masked downloads open at once'));
    this.held += MAX_MASKED_DOWNLOAD_BYTES;
    try {
      const download = await MaskedDownload.load(await this.deps.reader(), path, this.deps.masking);
      if (this.deps.judge.signal.aborted) return;
      if (this.openHandles() >= MAX_SFTP_HANDLES) return this.send(statusPacket(request.id, SFTP_STATUS.failure, 'twokey: too many open handles'));
      this.held += download.content.length;
      const handle = Buffer.from(`${DOWNLOAD_HANDLE_PREFIX}${this.nextHandle++}`);
      this.downloads.set(handle.toString('hex'), download);
      this.send(handlePacket(request.id, handle));
    } catch (e) {
      const code = e instanceof MaskedDownloadError && e.code !== undefined ? e.code : SFTP_STATUS.failure;
      this.send(statusPacket(request.id, code, `twokey: ${(e as Error).message}`));
    } finally {
      this.held -= MAX_MASKED_DOWNLOAD_BYTES;
    }
  }

  /** Requests on a masked download: reads and stats served from the masked copy. */
  private onDownloadRequest(request: Request, download: MaskedDownload, handleKey: string): void {
    switch (request.op) {
      case 'read': {
        const data = download.read(request.offset ?? 0, request.length ?? 0);
        return this.send(data ? dataPacket(request.id, data) : statusPacket(request.id, SFTP_STATUS.eof, ''));
      }
      case 'fstat':
        return this.send(attrsPacket(request.id, download.content.length, download.mode));
      case 'close':
        this.downloads.delete(handleKey);
        this.held -= download.content.length;
        return this.send(statusPacket(request.id, SFTP_STATUS.ok, ''));
      default:
        return this.send(statusPacket(request.id, SFTP_STATUS.opUnsupported, `twokey: ${request.op} on a masked download is not supported`));
    }
  }

  /** The upload's CLOSE: judged with what the reviewer must see, written on the write login once allowed or approved. */
  private async finishUpload(request: Request, upload: HeldUpload): Promise<void> {
    const content = upload.content();
    try {
      await this.runChange(request, [upload.path], HeldUpload.review(upload.path, content, upload.mode), (sftp, done) =>
        sftp.writeFile(upload.path, content, upload.mode === undefined ? {} : { mode: upload.mode & PERMISSION_BITS }, done),
      );
    } finally {
      this.held -= upload.received;
      upload.release();
    }
  }

  /** A request that changes files by path: judged, then run on the write login when it is one the agent can build. */
  private async change(request: Request, paths: readonly string[]): Promise<void> {
    const [a = '', b = ''] = paths;
    const op = request.extension ?? request.op;
    const mode = request.attrs?.mode === undefined ? undefined : request.attrs.mode & PERMISSION_BITS;
    // The reviewer sees the permission bits that would be set (a setuid bit is a change of its own).
    const text = mode === undefined ? sftpText(op, paths) : `${sftpText(op, paths)} mode ${mode.toString(8)}`;
    const runs: Record<string, WriteRun> = {
      remove: (s, done) => s.unlink(a, done),
      rmdir: (s, done) => s.rmdir(a, done),
      mkdir: (s, done) => s.mkdir(a, mode === undefined ? {} : { mode }, done),
      rename: (s, done) => s.rename(a, b, done),
      'posix-rename@openssh.com': (s, done) => s.ext_openssh_rename(a, b, done),
      setstat: (s, done) => (mode === undefined ? done() : s.chmod(a, mode, done)),
    };
    const run = runs[op];
    // Refused before it is judged: a reviewer is never asked about a change the agent would not run.
    if (!run) return this.refuse(request, `twokey: ${shown(op)} is not relayed over SFTP`);
    await this.runChange(request, paths, text, run);
  }

  private async runChange(request: Request, paths: readonly string[], text: string, run: WriteRun): Promise<void> {
    const outcome = await judgeAndWrite(this.deps.judge, () => this.deps.writer(), paths, text, run);
    if (this.deps.judge.signal.aborted) return;
    if (outcome.kind === 'refused') return this.refuse(request, outcome.message);
    if (outcome.kind === 'done') return this.send(statusPacket(request.id, SFTP_STATUS.ok, ''));
    const code = (outcome.error as { code?: unknown }).code;
    this.send(statusPacket(request.id, typeof code === 'number' ? code : SFTP_STATUS.failure, `twokey: the write login could not do it (${outcome.error.message})`));
  }
}
