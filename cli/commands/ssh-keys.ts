import { open } from 'node:fs/promises';
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
const USAGE = 'usage: twokey ssh-keys add FILE.pub [--ttl 8h] | list [--json] | remove FINGERPRINT|ID';
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

/**
 * `twokey ssh-keys add FILE [--ttl 8h]`, `list`, `remove FINGERPRINT|ID`: the caller's own SSH public keys,
 * which agents accept for the identity of the API token they were registered with, until they expire.
 */
export async function sshKeysCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'add') {
    const { values, positionals } = parse(rest, { ...common, ttl: { type: 'string' } });
    const file = positionals[0];
    if (!file || positionals.length > 1) throw new UsageError(USAGE);
    const text = await readAtMost(file, MAX_PUBLIC_KEY_FILE_BYTES + 1);
    if (Buffer.byteLength(text) > MAX_PUBLIC_KEY_FILE_BYTES || /PRIVATE KEY/.test(text)) throw new UsageError(`${file} is not a public key file (give the .pub file)`);
    const body = { publicKey: text.trim(), ...(values.ttl ? { ttlSeconds: durationSeconds(values.ttl, '--ttl') } : {}) };
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
