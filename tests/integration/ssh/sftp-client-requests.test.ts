import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { classifySftp, type SftpClassification } from '../../../core/ssh/classify-sftp';
import { bodyOf, parseRequest, SftpFramer, SFTP_STATUS, statusPacket } from '../../../agent/ssh/sftp/packets';

/**
 * The real OpenSSH `sftp` client talks to the real `sftp-server` through a small relay built on the
 * agent's SFTP packet parser and classifySftp (`sftp -D` runs a tap that connects to it): what the
 * agent parses and classifies is what the client really sends (a request the parser calls malformed
 * ends the connection, so that the test fails).
 */
const SFTP_SERVER = '/usr/lib/openssh/sftp-server';

interface Seen {
  readonly op: string;
  readonly class: SftpClassification['class'];
  readonly paths: readonly string[];
}

class SftpRelay {
  readonly seen: Seen[] = [];
  refuseWrites = false;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly home: string) {
    this.server = createServer((socket) => this.relay(socket));
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  private relay(socket: Socket): void {
    this.sockets.add(socket);
    const upstream = spawn(SFTP_SERVER, [], { cwd: this.home, env: { HOME: this.home }, stdio: ['pipe', 'pipe', 'ignore'] });
    const fromClient = new SftpFramer();
    socket.on('data', (chunk: Buffer) => {
      const framed = fromClient.push(chunk);
      if ('invalidLength' in framed) return socket.destroy();
      for (const frame of framed.packets) {
        const request = parseRequest(bodyOf(frame));
        if (request.kind === 'malformed') return socket.destroy();
        if (request.kind === 'request') {
          const classified = classifySftp(request);
          this.seen.push({ op: request.op, class: classified.class, paths: classified.paths });
          if (classified.class === 'write' && this.refuseWrites) {
            socket.write(statusPacket(request.id, SFTP_STATUS.permissionDenied, 'twokey: writes are held'));
            continue;
          }
        }
        upstream.stdin.write(frame);
      }
    });
    upstream.stdout.pipe(socket);
    socket.on('end', () => upstream.stdin.end());
    socket.on('close', () => upstream.kill());
    upstream.stdout.on('end', () => socket.end());
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

describe('SFTP requests from the real sftp client', () => {
  let root: string;
  let home: string;
  let relay: SftpRelay;
  let tap: string;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'twokey-sftp-'));
    home = join(root, 'home');
    mkdirSync(home);
    relay = new SftpRelay(home);
    const port = await relay.listen();
    tap = join(root, 'tap.js');
    writeFileSync(tap, `const s = require('net').connect(${port}, '127.0.0.1'); process.stdin.pipe(s); s.pipe(process.stdout);\n`);
  });
  afterAll(async () => {
    await relay.close();
    rmSync(root, { recursive: true, force: true });
  });
  beforeEach(() => {
    relay.seen.length = 0;
    rmSync(join(home, 'work'), { recursive: true, force: true });
    mkdirSync(join(home, 'work'));
    writeFileSync(join(home, 'work', 'report.txt'), 'quarterly numbers\n');
    writeFileSync(join(root, 'upload.txt'), 'new content\n');
  });

  /** Runs sftp in batch mode through the relay (in this process, so not spawnSync); `-` before a command lets the batch go on after it fails. */
  async function sftp(commands: readonly string[]): Promise<{ status: number | null; output: string }> {
    const child = spawn('sftp', ['-b', '-', '-D', `${process.execPath} ${tap}`], { cwd: root, stdio: ['pipe', 'pipe', 'pipe'], timeout: 30_000 });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stdin.end(commands.join('\n'));
    const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
    return { status, output };
  }

  const writes = (): Seen[] => relay.seen.filter((s) => s.class === 'write');

  it('classes downloads, listings and stats as reads, naming the files they open', async () => {
    const { status } = await sftp(['cd work', 'ls -l', 'get report.txt', 'df .']);
    expect(status).toBe(0);
    expect(writes()).toEqual([]);
    const reads = relay.seen.map((s) => `${s.op} ${s.paths.join(' ')}`);
    expect(reads).toEqual(expect.arrayContaining([`opendir ${home}/work`, `open ${home}/work/report.txt`, `extended ${home}/work/.`]));
    // ls -l asks for owner names with users-groups-by-id, whose id lists are no path.
    expect(relay.seen.filter((s) => s.paths.some((p) => p.includes('\0')))).toEqual([]);
    // Requests on a handle name no path of their own.
    expect(relay.seen.map((s) => s.op)).toEqual(expect.arrayContaining(['readdir', 'read', 'close']));
    expect(readFileSync(join(root, 'report.txt'), 'utf8')).toBe('quarterly numbers\n');
  });

  it('classes uploads, mkdir, rename, chmod, symlink, rm and rmdir as writes, naming the files', async () => {
    const { status } = await sftp(['cd work', 'put upload.txt', 'mkdir d', 'rename upload.txt moved.txt', 'chmod 600 moved.txt', 'ln -s moved.txt link', 'rm link', 'rmdir d']);
    expect(status).toBe(0);
    const work = `${home}/work`;
    expect(writes().map((s) => `${s.op} ${s.paths.join(' ')}`)).toEqual(
      expect.arrayContaining([
        `open ${work}/upload.txt`,
        `mkdir ${work}/d`,
        `extended ${work}/upload.txt ${work}/moved.txt`,
        `setstat ${work}/moved.txt`,
        `remove ${work}/link`,
        `rmdir ${work}/d`,
      ]),
    );
    expect(writes().map((s) => s.op)).toEqual(expect.arrayContaining(['write', 'symlink']));
  });

  it('leaves the target unchanged when the relay answers every write with a refusal', async () => {
    relay.refuseWrites = true;
    try {
      const { output } = await sftp(['cd work', '-put upload.txt', '-mkdir d', '-rm report.txt', 'ls']);
      expect(output).toContain('Permission denied');
      expect(existsSync(join(home, 'work', 'upload.txt'))).toBe(false);
      expect(existsSync(join(home, 'work', 'd'))).toBe(false);
      expect(readFileSync(join(home, 'work', 'report.txt'), 'utf8')).toBe('quarterly numbers\n');
    } finally {
      relay.refuseWrites = false;
    }
  });
});
