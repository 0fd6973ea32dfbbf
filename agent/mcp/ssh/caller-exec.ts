import { connect as connectTcp, type Socket } from 'node:net';
import { Client, type ClientChannel } from 'ssh2';
import type { CallerChannel, InProcessChannels } from '../../sessions/channels';

/** Time to open the in-process SSH connection (handshake, token check). */
export const SSH_CONNECT_TIMEOUT_MS = 15_000;
/** Bytes of stdout and of stderr one call keeps each; the rest is read, dropped and flagged `truncated`. */
export const MAX_SSH_OUTPUT_BYTES = 1024 * 1024;

export interface ExecOutput {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly truncated: boolean;
}

/** A capped text buffer: what a command prints beyond `max` bytes is counted as truncation, never kept. */
class CappedText {
  private readonly chunks: Buffer[] = [];
  private bytes = 0;
  truncated = false;

  constructor(private readonly max: number) {}

  push(chunk: Buffer): void {
    const room = this.max - this.bytes;
    if (chunk.length > room) this.truncated = true;
    const kept = chunk.length > room ? chunk.subarray(0, Math.max(0, room)) : chunk;
    this.chunks.push(kept);
    this.bytes += kept.length;
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

/**
 * An SSH connection to the agent's own listener for a target as the caller (their token is the
 * password), registered as an MCP channel before the listener can ask, so that `ssh_exec` takes the
 * same path as `ssh`: classification, policy (`mcpWrites`), masking, approvals, recording.
 */
export async function openCallerSsh(address: { host: string; port: number }, token: string, channel: { registry: InProcessChannels; is: CallerChannel }): Promise<Client> {
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = connectTcp({ host: address.host, port: address.port, noDelay: true });
    s.setTimeout(SSH_CONNECT_TIMEOUT_MS, () => s.destroy(new Error('timed out connecting to the listener')));
    s.once('connect', () => {
      s.setTimeout(0);
      resolve(s);
    });
    s.once('error', reject);
  });
  const release = channel.registry.register(socket.localAddress ?? '', socket.localPort ?? 0, channel.is);
  socket.once('close', release);
  const client = new Client();
  client.on('error', () => undefined);
  try {
    await new Promise<void>((resolve, reject) => {
      client.once('ready', () => resolve());
      client.once('error', reject);
      client.once('close', () => reject(new Error('the listener closed the connection')));
      client.connect({
        sock: socket,
        username: 'mcp',
        password: token,
        readyTimeout: SSH_CONNECT_TIMEOUT_MS,
        // The listener is this process, reached over the socket just opened: its host key proves nothing more.
        hostVerifier: () => true,
      });
    });
  } catch (e) {
    socket.destroy();
    throw e;
  }
  return client;
}

/**
 * Runs one exec on the connection: `stdin` written and closed, stdout and stderr kept up to
 * MAX_SSH_OUTPUT_BYTES each. `onStderrLine` sees each complete stderr line as it arrives (the
 * listener's notices, such as a held command's request id, come that way).
 */
export function runExec(client: Client, command: string, stdin: string | undefined, onStderrLine: (line: string) => void): Promise<ExecOutput> {
  return new Promise<ExecOutput>((resolve, reject) => {
    client.exec(command, (e, stream: ClientChannel) => {
      if (e) return reject(e);
      const out = new CappedText(MAX_SSH_OUTPUT_BYTES);
      const err = new CappedText(MAX_SSH_OUTPUT_BYTES);
      let partial = '';
      let exitCode: number | null = null;
      let signal: string | null = null;
      stream.on('data', (c: Buffer) => out.push(c));
      stream.stderr.on('data', (c: Buffer) => {
        err.push(c);
        // Notices are short lines at the start; a line is looked at only while it stays notice-sized.
        partial = (partial + c.toString('utf8')).slice(-MAX_NOTICE_LINE_CHARS);
        const lines = partial.split(/\r?\n/);
        partial = lines.pop() ?? '';
        for (const line of lines) onStderrLine(line);
      });
      stream.on('exit', (code: number | null, name?: string) => {
        exitCode = code ?? null;
        signal = code === null || code === undefined ? (name ?? null) : null;
      });
      stream.once('close', () => resolve({ stdout: out.text(), stderr: err.text(), exitCode, signal, truncated: out.truncated || err.truncated }));
      if (stdin !== undefined) stream.write(stdin);
      stream.end();
    });
  });
}

/** The longest stderr line looked at for a notice (a pending notice with many reviewer groups fits). */
const MAX_NOTICE_LINE_CHARS = 4096;
