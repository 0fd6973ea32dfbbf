import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parsePublicKeyLine, publicKeyLine } from '../../core/ssh/public-key';
import { SshWireReader, sshString } from '../../core/ssh/wire';

/**
 * The agent's SSH host key for one target: an Ed25519 key made the first time the target is served and
 * kept in `${stateDir}/ssh/<target>/host_key` (0600, OpenSSH's private key format, which ssh2 and
 * ssh-keygen read), its public line beside it in `host_key.pub` for `twokey known-hosts`.
 */
export const HOST_KEY_FILE = 'host_key';
export const HOST_PUBLIC_KEY_FILE = 'host_key.pub';
const OPENSSH_KEY_MAGIC = 'openssh-key-v1\0';
/** The private section is padded to the cipher's block size; `none` has 8 (PROTOCOL.key in OpenSSH). */
const UNENCRYPTED_BLOCK_BYTES = 8;
const PEM_LINE_CHARS = 70;

export class HostKeyError extends Error {
  override name = 'HostKeyError';
}

export interface HostKey {
  /** The private key file's text (`-----BEGIN OPENSSH PRIVATE KEY-----`). */
  readonly privateKey: string;
  /** `ssh-ed25519 AAAA... twokey-<target>`. */
  readonly publicKeyLine: string;
}

/** The directory of one target's host key; a target name that is not one path segment is refused. */
export function hostKeyDir(stateDir: string, target: string): string {
  if (!/^[A-Za-z0-9_.-]{1,128}$/.test(target) || target === '.' || target === '..') throw new HostKeyError(`target name ${JSON.stringify(target)} cannot name a host key directory`);
  return join(stateDir, 'ssh', target);
}

/** The target's host key, made and stored on first use. */
export async function loadOrCreateHostKey(stateDir: string, target: string): Promise<HostKey> {
  const dir = hostKeyDir(stateDir, target);
  const file = join(dir, HOST_KEY_FILE);
  const existing = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw e;
  });
  if (existing !== undefined) {
    // As sshd does: a private key others could read may have leaked, and is not used.
    if ((await stat(file)).mode & 0o077) throw new HostKeyError(`${file} is readable by others: make it 0600 (or replace the key)`);
    return { privateKey: existing, publicKeyLine: publicLineOfPrivateKey(existing, target) };
  }
  const made = makeEd25519HostKey(`twokey-${target}`);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // Write-then-rename: a crash never leaves half a key that the next start would refuse.
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, made.privateKey, { mode: 0o600 });
  await rename(tmp, file);
  await writeFile(join(dir, HOST_PUBLIC_KEY_FILE), `${made.publicKeyLine}\n`, { mode: 0o644 });
  return made;
}

/** The public line of a target's host key as stored (`host_key.pub`), or undefined when the target has none yet. */
export async function readHostPublicKeyLine(stateDir: string, target: string): Promise<string | undefined> {
  const text = await readFile(join(hostKeyDir(stateDir, target), HOST_PUBLIC_KEY_FILE), 'utf8').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw e;
  });
  if (text === undefined) return undefined;
  const parsed = parsePublicKeyLine(text.trim());
  if (!parsed.ok) throw new HostKeyError(`the host key of ${target} is unreadable: ${parsed.error.message}`);
  return publicKeyLine(parsed.value);
}

function makeEd25519HostKey(comment: string): HostKey {
  const jwk = generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' });
  const seed = Buffer.from(jwk.d as string, 'base64url');
  const pub = Buffer.from(jwk.x as string, 'base64url');
  const publicBlob = Buffer.concat([sshString('ssh-ed25519'), sshString(pub)]);
  const check = randomBytes(4);
  const unpadded = Buffer.concat([check, check, publicBlob, sshString(Buffer.concat([seed, pub])), sshString(comment)]);
  const padLength = (UNENCRYPTED_BLOCK_BYTES - (unpadded.length % UNENCRYPTED_BLOCK_BYTES)) % UNENCRYPTED_BLOCK_BYTES;
  const padding = Buffer.from(Array.from({ length: padLength }, (_, i) => i + 1));
  const body = Buffer.concat([
    Buffer.from(OPENSSH_KEY_MAGIC, 'latin1'),
    sshString('none'),
    sshString('none'),
    sshString(''),
    Buffer.from([0, 0, 0, 1]),
    sshString(publicBlob),
    sshString(Buffer.concat([unpadded, padding])),
  ]);
  const lines = body.toString('base64').match(new RegExp(`.{1,${PEM_LINE_CHARS}}`, 'g')) ?? [];
  const privateKey = `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join('\n')}\n-----END OPENSSH PRIVATE KEY-----\n`;
  return { privateKey, publicKeyLine: publicKeyLine({ type: 'ssh-ed25519', blob: publicBlob, comment }) };
}

/** The public key an OpenSSH private key file carries in its clear header (its first public key). */
function publicLineOfPrivateKey(text: string, target: string): string {
  const base64 = /-----BEGIN OPENSSH PRIVATE KEY-----([A-Za-z0-9+/=\s]+)-----END OPENSSH PRIVATE KEY-----/.exec(text)?.[1]?.replace(/\s+/g, '');
  const body = base64 ? Buffer.from(base64, 'base64') : Buffer.alloc(0);
  if (body.subarray(0, OPENSSH_KEY_MAGIC.length).toString('latin1') !== OPENSSH_KEY_MAGIC) throw new HostKeyError(`the host key file of ${target} is not an OpenSSH private key`);
  const reader = new SshWireReader(body.subarray(OPENSSH_KEY_MAGIC.length));
  const [, , , keyCount, blob] = [reader.string(), reader.string(), reader.string(), reader.uint32(), reader.string()];
  const parsed = blob && keyCount === 1 ? parsePublicKeyLine(`ssh-ed25519 ${blob.toString('base64')}`) : undefined;
  if (!parsed?.ok) throw new HostKeyError(`the host key file of ${target} does not hold an Ed25519 key`);
  return publicKeyLine({ ...parsed.value, comment: `twokey-${target}` });
}
