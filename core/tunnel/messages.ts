import { z } from 'zod';
import { MAX_STORED_CHUNK_BYTES } from '../recording/chunk';
import { SSH_KEY_TYPES } from '../ssh/public-key';
import { err, ok, type Result } from '../result';
import { ACTION_CLASSES } from '../policy/schema';

/** API Gateway WebSocket frames are limited to 32 KB; a sender refuses anything larger. */
export const MAX_FRAME_BYTES = 32 * 1024;
export const TUNNEL_PROTOCOL_VERSION = 1;
export const MAX_TARGETS_PER_AGENT = 200;
/**
 * Upload URLs one presign request may ask for (sealed chunks waiting in the spool, in order): six URLs
 * of at most 4 KB fit in a frame.
 */
export const MAX_PRESIGN_BATCH = 6;
const MAX_URL_CHARS = 4096;

const v = z.literal(TUNNEL_PROTOCOL_VERSION);
const targetName = z.string().min(1).max(128);

const requestId = z.string().regex(/^[A-Za-z0-9-]{8,64}$/);
/** Statement text must leave room in a 32 KB frame for the rest of the request. */
export const MAX_APPROVAL_TEXT_BYTES = 24 * 1024;
/** The longest reason a caller gives for a request. */
export const MAX_REASON_CHARS = 1024;

const approvalAsk = z.strictObject({
  type: z.literal('approval.request'),
  v,
  requestId,
  kind: z.enum(['statement', 'script', 'window']),
  target: targetName,
  protocol: z.string().max(32),
  text: z.string().max(MAX_APPROVAL_TEXT_BYTES),
  params: z.array(z.string().max(4096).nullable()).max(100).optional(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  class: z.enum(ACTION_CLASSES),
  rule: z.string().max(128),
  requester: z.strictObject({
    issuer: z.string().min(1).max(1024),
    subject: z.string().min(1).max(256),
    name: z.string().max(256),
    email: z.string().max(256).optional(),
    groups: z.array(z.string().max(128)).max(100),
  }),
  via: z.string().max(256).optional(),
  reason: z.string().max(MAX_REASON_CHARS).optional(),
  blastRadius: z.string().max(256).optional(),
  approval: z.strictObject({ groups: z.array(z.string().max(128)).min(1).max(20), min: z.number().int().min(1).max(10), timeoutSeconds: z.number().int().min(1) }),
  windowMinutes: z.number().int().min(1).max(24 * 60).optional(),
});

/** Agent -> control plane. The message `type` is API Gateway's route key. */
export const agentMessageSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('hello'),
    v,
    agentVersion: z.string().max(64),
    targets: z.array(targetName).max(MAX_TARGETS_PER_AGENT),
    policyVersion: z.number().int().nonnegative().optional(),
  }),
  z.strictObject({ type: z.literal('policy.get'), v }),
  /** Asks for the registered SSH keys again (a heartbeat said they changed after the agent's copy). */
  z.strictObject({ type: z.literal('ssh.keys.get'), v }),
  z.strictObject({ type: z.literal('heartbeat'), v, sentAt: z.number().int() }),
  approvalAsk,
  z.strictObject({ type: z.literal('approval.ack'), v, requestId }),
  z.strictObject({
    type: z.literal('session.start'),
    v,
    sessionId: requestId,
    target: targetName,
    protocol: z.string().max(32),
    format: z.enum(['ndjson', 'asciicast']),
    identity: z.strictObject({ subject: z.string().max(256), issuer: z.string().max(512).optional(), name: z.string().max(256), email: z.string().max(256).optional(), groups: z.array(z.string().max(128)).max(100) }),
    startedAt: z.string().max(40),
  }),
  z.strictObject({
    type: z.literal('recording.presign'),
    v,
    sessionId: requestId,
    seq: z.number().int().min(0).max(1_000_000),
    /**
     * Sealed chunks `seq`, `seq + 1`, ... as they will be uploaded: each URL signs in the length and the
     * SHA-256 (the chain's digest of the stored bytes), so S3 stores those bytes or nothing.
     */
    chunks: z.array(z.strictObject({ sha256: z.string().regex(/^[0-9a-f]{64}$/), bytes: z.number().int().min(1).max(MAX_STORED_CHUNK_BYTES) })).min(1).max(MAX_PRESIGN_BATCH),
  }),
  z.strictObject({
    type: z.literal('session.end'),
    v,
    sessionId: requestId,
    endedAt: z.string().max(40),
    chunkCount: z.number().int().min(0),
    finalDigest: z.string().regex(/^[0-9a-f]{64}$/),
    /** false when the agent could not record everything (a crash, a full spool under best-effort). */
    complete: z.boolean(),
  }),
]);

/**
 * One registered SSH key as agents learn it: its fingerprint (agents match the key a caller offers by
 * it) and the identity it stands for, as the registering token said it.
 */
export const registeredSshKeySchema = z.strictObject({
  fingerprint: z.string().regex(/^SHA256:[A-Za-z0-9+/]{43}$/),
  keyType: z.enum(SSH_KEY_TYPES),
  /** Epoch milliseconds; the key never matches from then on. */
  expiresAt: z.number().int().nonnegative(),
  issuer: z.string().min(1).max(1024),
  subject: z.string().min(1).max(256),
  name: z.string().max(256),
  email: z.string().max(256).optional(),
  groups: z.array(z.string().max(128)).max(100),
});
export type RegisteredSshKey = z.infer<typeof registeredSshKeySchema>;
/** Frames one snapshot of the registered keys may take (a snapshot of more is not sent whole, so not at all). */
export const MAX_SSH_KEYS_PARTS = 1000;
/** The `error` code an agent gets when the keys cannot be sent (too many): it then trusts none. */
export const SSH_KEYS_UNAVAILABLE = 'ssh-keys-unavailable';

/** Control plane -> agent. */
export const controlMessageSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('hello.ok'),
    v,
    agent: z.string(),
    accepted: z.array(targetName),
    rejected: z.array(z.strictObject({ target: targetName, reason: z.string() })),
    /** The deployment's key for `hash` masks (base64), so that hashed values join across agents. */
    maskingKey: z.string().max(128).optional(),
  }),
  z.strictObject({
    type: z.literal('policy'),
    v,
    version: z.number().int().nonnegative(),
    /** The policy document reduced to what concerns this agent's targets; the agent validates it again. */
    document: z.unknown(),
  }),
  /**
   * Every registered SSH key, in `parts` frames (a frame is 32 KB at most), sent on hello and after each
   * change. A snapshot replaces the agent's set only once all its parts arrived, and only if its `asOf`
   * (epoch milliseconds when it was read) is not older than the set it has.
   */
  z.strictObject({
    type: z.literal('ssh.keys'),
    v,
    asOf: z.number().int().nonnegative(),
    part: z.number().int().min(0).max(MAX_SSH_KEYS_PARTS - 1),
    parts: z.number().int().min(1).max(MAX_SSH_KEYS_PARTS),
    keys: z.array(registeredSshKeySchema),
  }),
  z.strictObject({
    type: z.literal('heartbeat.ok'),
    v,
    sentAt: z.number().int(),
    /** The current policy version, so an agent that missed a push notices within one heartbeat. */
    policyVersion: z.number().int().nonnegative().optional(),
    /** When the registered SSH keys last changed (epoch ms), so an agent that missed a push asks again. */
    sshKeysChangedAt: z.number().int().nonnegative().optional(),
  }),
  z.strictObject({
    type: z.literal('approval.pending'),
    v,
    requestId,
    reviewers: z.number().int().nonnegative(),
    groups: z.array(z.string()),
    expiresAt: z.string(),
  }),
  z.strictObject({
    type: z.literal('approval.decision'),
    v,
    requestId,
    outcome: z.enum(['approved', 'denied', 'expired', 'failed']),
    decidedBy: z.array(z.string()),
    comment: z.string().max(1024).optional(),
    kind: z.enum(['statement', 'script', 'window']),
    target: targetName,
    /** The requester's principal: a grant or window is theirs only at this issuer. */
    issuer: z.string(),
    subject: z.string(),
    sha256: z.string(),
    /** Until when an approval can still be used (a one-time grant, or a write window). */
    validUntil: z.string(),
  }),
  z.strictObject({
    type: z.literal('recording.url'),
    v,
    sessionId: requestId,
    seq: z.number().int(),
    url: z.string().max(MAX_URL_CHARS),
    /** URLs for the chunks after `seq`, in order, when the request asked for more than one. */
    following: z.array(z.string().max(MAX_URL_CHARS)).max(MAX_PRESIGN_BATCH - 1).optional(),
    expiresAt: z.string(),
  }),
  /** The session is recorded by the control plane: its chunks may be presigned now (an agent waits for this, so the two never race). */
  z.strictObject({ type: z.literal('session.started'), v, sessionId: requestId }),
  z.strictObject({ type: z.literal('session.ended'), v, sessionId: requestId, status: z.enum(['complete', 'incomplete']) }),
  z.strictObject({
    type: z.literal('error'),
    v,
    code: z.string().max(64),
    message: z.string().max(1024),
    inReplyTo: z.string().max(64).optional(),
  }),
]);

export type AgentMessage = z.infer<typeof agentMessageSchema>;
export type ControlMessage = z.infer<typeof controlMessageSchema>;

export class FrameError extends Error {
  constructor(
    readonly code: 'frame-too-large' | 'malformed-frame',
    message: string,
  ) {
    super(message);
    this.name = 'FrameError';
  }
}

/** Serializes a message; refuses frames over {@link MAX_FRAME_BYTES} instead of letting API Gateway drop them. */
export function encodeFrame(message: AgentMessage | ControlMessage): Result<string, FrameError> {
  const text = JSON.stringify(message);
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_FRAME_BYTES) {
    return err(new FrameError('frame-too-large', `${message.type} frame is ${bytes} bytes, limit ${MAX_FRAME_BYTES}`));
  }
  return ok(text);
}

function decodeWith<T>(schema: z.ZodType<T>, frame: string | Buffer): Result<T, FrameError> {
  const size = typeof frame === 'string' ? Buffer.byteLength(frame, 'utf8') : frame.length;
  if (size > MAX_FRAME_BYTES) return err(new FrameError('frame-too-large', `frame of ${size} bytes, limit ${MAX_FRAME_BYTES}`));
  let json: unknown;
  try {
    json = JSON.parse(typeof frame === 'string' ? frame : frame.toString('utf8'));
  } catch {
    return err(new FrameError('malformed-frame', 'frame is not JSON'));
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    return err(new FrameError('malformed-frame', `invalid message: ${first?.path.join('.') || '(root)'} ${first?.message ?? ''}`.trim()));
  }
  return ok(parsed.data);
}

export const decodeAgentMessage = (frame: string | Buffer): Result<AgentMessage, FrameError> =>
  decodeWith(agentMessageSchema, frame);
export const decodeControlMessage = (frame: string | Buffer): Result<ControlMessage, FrameError> =>
  decodeWith(controlMessageSchema, frame);
