import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { keyProofStatement, SSH_KEY_PROOF_NAMESPACE } from '../../core/ssh/key-possession';
import { parsePublicKeyLine } from '../../core/ssh/public-key';
import { jwtPayload } from '../auth/oauth-client';
import { parse, UsageError } from '../args';
import { durationSeconds } from '../duration';
import { apiCall, clientOptions, CONTROL_PLANE_OPTIONS } from '../control-plane-client';

interface SshKeyRow {
  id: string;
  fingerprint: string;
  type: string;
  comment: string;
  createdAt: string;
  expiresAt: string;
}

/** A public key file is one line; anything much larger is not one (the control plane refuses over 8 KB). */
const MAX_PUBLIC_KEY_FILE_BYTES = 64 * 1024;
const USAGE = 'usage: twokey ssh-keys add FILE.pub [--identity PRIVATE_KEY] [--ttl 8h] | list [--json] | remove FINGERPRINT|ID';
/** How long ssh-keygen may take to sign (a passphrase prompt included). */
const SIGN_TIMEOUT_MS = 120_000;
const common = CONTROL_PLANE_OPTIONS;

/** The first `limit` bytes of a file (a device or a huge file is not read whole). */
async function readAtMost(file: string, limit: number): Promise<string> {
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(limit);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, limit - length);
      length += bytesRead;
      if (bytesRead === 0 || length === limit) return buffer.subarray(0, length).toString('utf8');
    }
  } finally {
    await handle.close();
  }
}

/** The private key that signs for FILE.pub: --identity, else FILE without `.pub` when it exists, else FILE itself (ssh-keygen then asks ssh-agent). */
function privateKeyOf(file: string, identity: string | undefined): string {
  if (identity) return identity;
  const bare = file.replace(/\.pub$/, '');
  return bare !== file && existsSync(bare) ? bare : file;
}

/** The statement the key signs: it names the identity of the API token (read from the token; the control plane checks it against the verified one). */
function keyProofFor(token: string | undefined, publicKeyLine: string, signedAt: string): string {
  const claims = token ? jwtPayload(token) : undefined;
  if (typeof claims?.iss !== 'string' || typeof claims.sub !== 'string') throw new UsageError('ssh-keys add needs the API token (--token or TWOKEY_TOKEN): the key signs a statement naming its issuer and subject');
  const key = parsePublicKeyLine(publicKeyLine);
  if (!key.ok) throw new UsageError(key.error.message);
  return keyProofStatement({ issuer: claims.iss, subject: claims.sub }, key.value, signedAt);
}

/** Signs with OpenSSH's own `ssh-keygen -Y sign` (it prompts for a passphrase on the terminal, or uses ssh-agent). */
function signKeyProof(privateKey: string, statement: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile('ssh-keygen', ['-Y', 'sign', '-f', privateKey, '-n', SSH_KEY_PROOF_NAMESPACE], { timeout: SIGN_TIMEOUT_MS }, (e, stdout, stderr) => {
      if (e) reject(new UsageError(`ssh-keygen could not sign with ${privateKey} (give the private key with --identity): ${stderr.trim() || e.message}`));
      else resolve(stdout);
    });
    // ssh-keygen may exit (a key it cannot load) before it reads the statement: its exit status says why, not the broken pipe.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(statement);
  });
}

/**
 * `twokey ssh-keys add FILE [--identity KEY] [--ttl 8h]`, `list`, `remove FINGERPRINT|ID`: the caller's own SSH public keys,
 * which agents accept for the identity of the API token they were registered with, until they expire.
 * Adding one proves possession of the private key: it signs a statement naming the token's identity.
 */
export async function sshKeysCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'add') {
    const { values, positionals } = parse(rest, { ...common, ttl: { type: 'string' }, identity: { type: 'string' } });
    const file = positionals[0];
    if (!file || positionals.length > 1) throw new UsageError(USAGE);
    const text = await readAtMost(file, MAX_PUBLIC_KEY_FILE_BYTES + 1);
    if (Buffer.byteLength(text) > MAX_PUBLIC_KEY_FILE_BYTES || /PRIVATE KEY/.test(text)) throw new UsageError(`${file} is not a public key file (give the .pub file)`);
    const publicKey = text.trim();
    const ttl = values.ttl ? { ttlSeconds: durationSeconds(values.ttl, '--ttl') } : {};
    const signedAt = new Date().toISOString();
    const signature = await signKeyProof(privateKeyOf(file, values.identity), keyProofFor(values.token ?? process.env.TWOKEY_TOKEN, publicKey, signedAt));
    const body = { publicKey, signedAt, signature, ...ttl };
    const { json } = await apiCall(clientOptions(values), 'POST', '/ssh-keys', JSON.stringify(body), { 'content-type': 'application/json' });
    const key = json as SshKeyRow;
    if (values.json) console.log(JSON.stringify(key));
    else console.log(`registered ${key.fingerprint} (id ${key.id}) until ${key.expiresAt}`);
    return 0;
  }
  if (sub === 'list') {
    const { values, positionals } = parse(rest, common);
    if (positionals.length > 0) throw new UsageError(USAGE);
    const { json } = await apiCall(clientOptions(values), 'GET', '/ssh-keys');
    const { keys } = json as { keys: SshKeyRow[] };
    if (values.json) {
      console.log(JSON.stringify(json, null, 2));
      return 0;
    }
    console.log(['ID'.padEnd(12), 'FINGERPRINT'.padEnd(50), 'EXPIRES'.padEnd(24), 'COMMENT'].join(' '));
    for (const k of keys) console.log([k.id.padEnd(12), k.fingerprint.padEnd(50), k.expiresAt.padEnd(24), k.comment].join(' '));
    return 0;
  }
  if (sub === 'remove') {
    const { values, positionals } = parse(rest, common);
    const key = positionals[0];
    if (!key || positionals.length > 1) throw new UsageError(USAGE);
    const { json } = await apiCall(clientOptions(values), 'DELETE', `/ssh-keys?key=${encodeURIComponent(key)}`);
    console.log(`removed ${(json as { removed: SshKeyRow }).removed.fingerprint}; agents stop accepting it`);
    return 0;
  }
  throw new UsageError(USAGE);
}
