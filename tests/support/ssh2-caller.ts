import { readFileSync } from 'node:fs';
import { Client, type ClientChannel } from 'ssh2';
import { sshFingerprint } from '../../core/ssh/public-key';
import type { SshStack } from './ssh-stack';

/**
 * A caller written with ssh2's client, for what OpenSSH's client cannot be made to do from a test
 * (a window change without a terminal, reading an exit signal, odd requests). The agent's host key is pinned.
 */
export async function ssh2Caller(stack: SshStack, target: string, token: string): Promise<Client> {
  const { host, port } = stack.endpoint(target);
  const line = readFileSync(await stack.knownHosts(target), 'utf8');
  const pinned = sshFingerprint(Buffer.from(line.trim().split(' ')[2] ?? '', 'base64'));
  const client = new Client();
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve());
    client.once('error', reject);
    client.connect({ host, port, username: 'caller', password: token, hostVerifier: (key: Buffer) => sshFingerprint(key) === pinned, readyTimeout: 20_000 });
  });
  return client;
}

/** Collects a channel's output until it closes, with its exit status or signal. */
export function collect(stream: ClientChannel): Promise<{ stdout: string; stderr: string; code: number | null; signal: string | undefined }> {
  let stdout = '';
  let stderr = '';
  let code: number | null = null;
  let signal: string | undefined;
  stream.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  stream.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  stream.on('exit', (c: number | null, s?: string) => {
    code = c;
    signal = s;
  });
  return new Promise((resolve) => stream.on('close', () => resolve({ stdout, stderr, code, signal })));
}
