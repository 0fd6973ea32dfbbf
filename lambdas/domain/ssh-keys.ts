import { randomBytes } from 'node:crypto';
import { principalKey, type Identity } from '../../core/identity/identity';
import { SSH_KEY_PROOF_NAMESPACE, verifyKeyProof } from '../../core/ssh/key-possession';
import { parsePublicKeyLine } from '../../core/ssh/public-key';
import { MAX_FRAME_BYTES, MAX_SSH_KEYS_PARTS, registeredSshKeySchema, SSH_KEYS_UNAVAILABLE, TUNNEL_PROTOCOL_VERSION, type ControlMessage, type RegisteredSshKey } from '../../core/tunnel/messages';
import type { SshKeyRecord } from '../store/ssh-key-store';
import type { ControlPlaneDeps } from './deps';
import { InvalidRequestError, NotFoundError } from './errors';

/**
 * A key's identity (and groups) is the registering token's, frozen for the key's life: a caller removed
 * from a group keeps that group over SSH until the key expires. Lifetimes are short for that reason.
 */
export const DEFAULT_SSH_KEY_TTL_SECONDS = 8 * 3600;
export const MAX_SSH_KEY_TTL_SECONDS = 24 * 3600;
export const MIN_SSH_KEY_TTL_SECONDS = 60;
export const MAX_SSH_KEYS_PER_PRINCIPAL = 10;
/** What a frame's envelope (`type`, `asOf`, `part`...) takes besides its keys. */
const SSH_KEYS_ENVELOPE_BYTES = 256;
const KEY_ID_BYTES = 6;

export interface SshKeyView {
  readonly id: string;
  readonly fingerprint: string;
  readonly type: string;
  readonly comment: string;
  readonly createdAt: string;
  readonly expiresAt: string;
}

const view = (r: SshKeyRecord): SshKeyView => ({ id: r.id, fingerprint: r.fingerprint, type: r.keyType, comment: r.comment, createdAt: r.createdAt, expiresAt: r.expiresAt });
const unexpired = (r: SshKeyRecord, now: Date): boolean => Date.parse(r.expiresAt) > now.getTime();

function ttlSecondsOf(value: unknown): number {
  if (value === undefined) return DEFAULT_SSH_KEY_TTL_SECONDS;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < MIN_SSH_KEY_TTL_SECONDS || value > MAX_SSH_KEY_TTL_SECONDS) {
    throw new InvalidRequestError(`ttlSeconds must be a whole number from ${MIN_SSH_KEY_TTL_SECONDS} to ${MAX_SSH_KEY_TTL_SECONDS}`);
  }
  return value;
}

/** What an agent learns of a key. */
const registeredKeyOf = (r: SshKeyRecord): RegisteredSshKey => ({
  fingerprint: r.fingerprint,
  keyType: r.keyType,
  expiresAt: Date.parse(r.expiresAt),
  issuer: r.issuer,
  subject: r.subject,
  name: r.name,
  ...(r.email !== undefined ? { email: r.email } : {}),
  groups: [...r.groups],
});
const encodedBytes = (key: RegisteredSshKey): number => Buffer.byteLength(JSON.stringify(key), 'utf8') + 1;

/**
 * Registers the caller's public key for `ttlSeconds` (default 8 h). Registering a key again renews it.
 * The key is refused when malformed or of a refused type, without a fresh signature by it over the
 * statement naming the caller (core/ssh/key-possession.ts), when another identity holds it, when the
 * caller has MAX_SSH_KEYS_PER_PRINCIPAL keys already, when the identity would not fit a tunnel frame, or
 * when the set with it would need more than `maxParts` frames.
 */
export async function addSshKey(
  deps: Pick<ControlPlaneDeps, 'sshKeys' | 'clock' | 'log' | 'connections' | 'push'>,
  caller: Identity,
  body: Record<string, unknown>,
  maxParts = MAX_SSH_KEYS_PARTS,
): Promise<SshKeyView> {
  if (typeof body.publicKey !== 'string') throw new InvalidRequestError('publicKey must be the public key line (e.g. the contents of id_ed25519.pub)');
  const parsed = parsePublicKeyLine(body.publicKey);
  if (!parsed.ok) throw new InvalidRequestError(parsed.error.message);
  const ttlSeconds = ttlSecondsOf(body.ttlSeconds);
  const key = parsed.value;
  const now = deps.clock();
  if (typeof body.signedAt !== 'string' || typeof body.signature !== 'string') {
    throw new InvalidRequestError(`signedAt and signature must prove possession of the private key (ssh-keygen -Y sign -n ${SSH_KEY_PROOF_NAMESPACE}; twokey ssh-keys add does it)`);
  }
  const proven = verifyKeyProof(caller, key, body.signedAt, body.signature, now);
  if (!proven.ok) throw new InvalidRequestError(`no proof of possession of the private key: ${proven.error}`);
  const principal = principalKey(caller);
  const existing = await deps.sshKeys.get(key.fingerprint);
  const record: SshKeyRecord = {
    fingerprint: key.fingerprint,
    id: existing?.principal === principal ? existing.id : randomBytes(KEY_ID_BYTES).toString('hex'),
    principal,
    keyType: key.type,
    publicKey: `${key.type} ${key.blob.toString('base64')}`,
    comment: key.comment,
    issuer: caller.issuer,
    subject: caller.subject,
    name: caller.name,
    ...(caller.email !== undefined ? { email: caller.email } : {}),
    groups: [...caller.groups],
    createdAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + ttlSeconds * 1000).toISOString(),
  };
  // What agents would refuse (a group name too long, too many groups) would spoil the frame it is in for everyone.
  const sent = registeredSshKeySchema.safeParse(registeredKeyOf(record));
  if (!sent.success) throw new InvalidRequestError(`this identity cannot be sent to agents: ${sent.error.issues[0]?.path.join('.')} ${sent.error.issues[0]?.message ?? ''}`.trim());
  if (encodedBytes(sent.data) > MAX_FRAME_BYTES - SSH_KEYS_ENVELOPE_BYTES) throw new InvalidRequestError('this identity (its groups) is too large to send to agents');
  const before = (await deps.sshKeys.listAll()).filter((r) => r.fingerprint !== record.fingerprint);
  const refused = refusalOf([...before, record], principal, maxParts, now);
  if (refused) {
    deps.log.warn('ssh-key.refused', { principal, reason: refused });
    throw new InvalidRequestError(refused);
  }
  await deps.sshKeys.put(record, now.toISOString());
  // Concurrent registrations each passed the check above on a set without the others' keys: read the
  // set again (consistently) and take a new key back if together they went over a limit.
  const renewal = existing?.principal === principal && unexpired(existing, now);
  const overshot = renewal ? undefined : refusalOf(await deps.sshKeys.listAll(), principal, maxParts, now);
  if (overshot) {
    deps.log.warn('ssh-key.refused', { principal, reason: overshot });
    await deps.sshKeys.delete(record.fingerprint, principal);
  }
  else deps.log.info('ssh-key.added', { principal, fingerprint: record.fingerprint, expiresAt: record.expiresAt });
  await announceChange(deps);
  if (overshot) throw new InvalidRequestError(overshot);
  return view(record);
}

/**
 * Why a set of keys cannot be kept, if it cannot: a principal over MAX_SSH_KEYS_PER_PRINCIPAL, or more
 * frames than a snapshot may take (such a set is sent to no agent, and every agent then trusts no key:
 * one more key, anyone's, must not do that to everyone else's).
 */
function refusalOf(records: readonly SshKeyRecord[], principal: string, maxParts: number, now: Date): string | undefined {
  const live = records.filter((r) => unexpired(r, now));
  if (live.filter((r) => r.principal === principal).length > MAX_SSH_KEYS_PER_PRINCIPAL) return `at most ${MAX_SSH_KEYS_PER_PRINCIPAL} SSH keys per identity: remove one first`;
  if (framesOf(live.map(registeredKeyOf)).length > maxParts) return 'the deployment holds as many SSH keys as agents can be sent: try again once some expire or are removed';
  return undefined;
}

/** The caller's unexpired keys, newest first. */
export async function listSshKeys(deps: Pick<ControlPlaneDeps, 'sshKeys' | 'clock'>, caller: Identity): Promise<SshKeyView[]> {
  const now = deps.clock();
  const keys = (await deps.sshKeys.listForPrincipal(principalKey(caller))).filter((r) => unexpired(r, now));
  return keys.sort((a, b) => b.createdAt.localeCompare(a.createdAt)).map(view);
}

/** Removes one of the caller's keys, named by fingerprint or id; anyone else's key is not found. */
export async function removeSshKey(
  deps: Pick<ControlPlaneDeps, 'sshKeys' | 'clock' | 'log' | 'connections' | 'push'>,
  caller: Identity,
  fingerprintOrId: string,
): Promise<SshKeyView> {
  const principal = principalKey(caller);
  const record = fingerprintOrId.startsWith('SHA256:')
    ? await deps.sshKeys.get(fingerprintOrId)
    : (await deps.sshKeys.listForPrincipal(principal)).find((r) => r.id === fingerprintOrId);
  if (!record || record.principal !== principal || !(await deps.sshKeys.delete(record.fingerprint, principal))) {
    throw new NotFoundError('no such SSH key of yours');
  }
  deps.log.info('ssh-key.removed', { principal, fingerprint: record.fingerprint });
  await announceChange(deps);
  return view(record);
}

/** Keys in fingerprint order, in frames of at most MAX_FRAME_BYTES each (always at least one frame). */
function framesOf(keys: readonly RegisteredSshKey[]): RegisteredSshKey[][] {
  const frames: RegisteredSshKey[][] = [[]];
  let bytes = 0;
  for (const key of [...keys].sort((a, b) => (a.fingerprint < b.fingerprint ? -1 : a.fingerprint > b.fingerprint ? 1 : 0))) {
    const size = encodedBytes(key);
    if (bytes + size > MAX_FRAME_BYTES - SSH_KEYS_ENVELOPE_BYTES) {
      frames.push([]);
      bytes = 0;
    }
    (frames[frames.length - 1] as RegisteredSshKey[]).push(key);
    bytes += size;
  }
  return frames;
}

/**
 * Every unexpired key as `ssh.keys` frames (at least one: an empty snapshot clears an agent's set), or
 * an `error` when they need more than `maxParts` frames (the rest of a hello still goes out).
 */
export async function sshKeysMessages(deps: Pick<ControlPlaneDeps, 'sshKeys' | 'clock' | 'log'>, maxParts = MAX_SSH_KEYS_PARTS): Promise<ControlMessage[]> {
  const now = deps.clock();
  const asOf = now.getTime();
  const keys = (await deps.sshKeys.listAll()).filter((r) => unexpired(r, now)).map(registeredKeyOf);
  const frames = framesOf(keys);
  if (frames.length > maxParts) {
    deps.log.error('ssh-keys.too-many', { keys: keys.length, frames: frames.length, maxParts });
    return [{ type: 'error', v: TUNNEL_PROTOCOL_VERSION, code: SSH_KEYS_UNAVAILABLE, message: `the registered SSH keys need ${frames.length} frames, more than ${maxParts}` }];
  }
  return frames.map((part, i) => ({ type: 'ssh.keys', v: TUNNEL_PROTOCOL_VERSION, asOf, part: i, parts: frames.length, keys: part }));
}

/**
 * After a change: marks the time (heartbeats carry it, so an agent that misses the push asks again
 * within a heartbeat), then sends the keys to every connected agent.
 */
async function announceChange(deps: Pick<ControlPlaneDeps, 'sshKeys' | 'clock' | 'log' | 'connections' | 'push'>): Promise<void> {
  await deps.sshKeys.markChanged(deps.clock().getTime());
  await pushSshKeysToAgents(deps);
}

/** Sends the keys to every connected agent. A failed push is logged: the agent asks again after its next heartbeat. */
async function pushSshKeysToAgents(deps: Pick<ControlPlaneDeps, 'sshKeys' | 'clock' | 'log' | 'connections' | 'push'>): Promise<void> {
  const messages = await sshKeysMessages(deps);
  const connections = await deps.connections.list();
  await Promise.all(
    connections.map(async (c) => {
      try {
        for (const message of messages) if ((await deps.push(c.connectionId, message)) === 'gone') return;
      } catch (e) {
        deps.log.error('ssh-keys.push.failed', { agent: c.agent, connectionId: c.connectionId, error: String(e) });
      }
    }),
  );
}
