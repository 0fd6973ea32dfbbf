import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { err, ok, type Result } from '../result';

/**
 * Recording chunks: gzip of one JSON header line and the chunk's events. Each header carries its
 * sequence number and the SHA-256 of the previous chunk (as stored, gzipped), so the chunks form a
 * chain; the digest of the last chunk, kept by the control plane, seals the whole recording.
 */
export const CHUNK_FORMAT_VERSION = 1;
export const GENESIS_DIGEST = '0'.repeat(64);
/**
 * A chunk is cut once its events reach this size, or at CHUNK_MAX_SECONDS, whichever comes first: with
 * the event that crosses it, a chunk stays within the 5 MiB the format allows (unless that one event alone is over 1 MiB).
 * Fewer, larger chunks cost fewer uploads; the open chunk waits on disk, not in memory.
 */
export const CHUNK_MAX_BYTES = 4 * 1024 * 1024;
export const CHUNK_MAX_SECONDS = 10;
/** Decompressed chunks larger than this are refused when reading (a gzip bomb is not a recording). */
const MAX_INFLATED_CHUNK_BYTES = 64 * 1024 * 1024;
/** The largest stored chunk an upload URL is signed for: one larger could not be read back anyway. */
export const MAX_STORED_CHUNK_BYTES = MAX_INFLATED_CHUNK_BYTES;

export type RecordingFormat = 'ndjson' | 'asciicast';

export interface ChunkHeader {
  readonly twokey: 'recording-chunk';
  readonly v: typeof CHUNK_FORMAT_VERSION;
  readonly sessionId: string;
  readonly seq: number;
  readonly format: RecordingFormat;
  readonly prev: string;
  readonly createdAt: string;
}

/**
 * Body bytes per gzip member. A chunk is stored as concatenated gzip members, which every gunzip
 * reads as one stream: sealing then never holds more than this much of a chunk's events at once.
 */
export const GZIP_MEMBER_BYTES = 256 * 1024;

/** The first member of every chunk: its header line. */
export const headerMember = (header: ChunkHeader): Buffer => gzipMember(Buffer.from(`${JSON.stringify(header)}\n`, 'utf8'));

/** Builds a stored chunk from its body given in pieces (each at most GZIP_MEMBER_BYTES is best). */
export class ChunkEncoder {
  private readonly members: Buffer[];

  constructor(header: ChunkHeader) {
    this.members = [headerMember(header)];
  }

  add(piece: Buffer): void {
    if (piece.length > 0) this.members.push(gzipMember(piece));
  }

  finish(): Buffer {
    return Buffer.concat(this.members);
  }
}

// Level 1: members are compressed on the proxy's thread, and the fastest level still shrinks JSON events several-fold.
export const gzipMember = (bytes: Buffer): Buffer => gzipSync(bytes, { level: 1 });

/** How every gzip member begins (ID1, ID2, deflate). */
const GZIP_MAGIC = Buffer.from([0x1f, 0x8b, 0x08]);
const isWhole = (members: Buffer): boolean => {
  try {
    gunzipSync(members, { maxOutputLength: MAX_INFLATED_CHUNK_BYTES });
    return true;
  } catch {
    return false;
  }
};

/**
 * The length of the longest prefix of `members` made of whole gzip members: a chunk file cut short
 * (a write torn by a power loss or a full disk) is kept up to its last whole member. 0 when none is.
 */
export function wholeMembersLength(members: Buffer): number {
  if (isWhole(members)) return members.length;
  for (let at = members.length - 1; at > 0; at--) {
    if (beginsMember(members, at) && isWhole(members.subarray(0, at))) return at;
  }
  return 0;
}

/** Whether a member could begin at `at`: the magic bytes follow, as far as the buffer goes (a write may have stopped within them). */
function beginsMember(bytes: Buffer, at: number): boolean {
  for (let i = 0; i < GZIP_MAGIC.length && at + i < bytes.length; i++) if (bytes[at + i] !== GZIP_MAGIC[i]) return false;
  return true;
}

export function encodeChunk(header: ChunkHeader, body: Buffer): Buffer {
  const encoder = new ChunkEncoder(header);
  for (let at = 0; at < body.length; at += GZIP_MEMBER_BYTES) encoder.add(body.subarray(at, at + GZIP_MEMBER_BYTES));
  return encoder.finish();
}

export const chunkDigest = (stored: Buffer): string => createHash('sha256').update(stored).digest('hex');

export type ChunkProblem = { readonly chunk: number; readonly reason: string };

export function decodeChunk(stored: Buffer, index: number): Result<{ header: ChunkHeader; body: Buffer }, ChunkProblem> {
  let raw: Buffer;
  try {
    raw = gunzipSync(stored, { maxOutputLength: MAX_INFLATED_CHUNK_BYTES });
  } catch {
    return err({ chunk: index, reason: 'not a valid gzip stream' });
  }
  const newline = raw.indexOf(0x0a);
  if (newline < 0) return err({ chunk: index, reason: 'no header line' });
  try {
    const header = JSON.parse(raw.toString('utf8', 0, newline)) as ChunkHeader;
    if (header.twokey !== 'recording-chunk' || header.v !== CHUNK_FORMAT_VERSION) return err({ chunk: index, reason: 'not a twokey recording chunk' });
    return ok({ header, body: raw.subarray(newline + 1) });
  } catch {
    return err({ chunk: index, reason: 'header is not JSON' });
  }
}

/**
 * Checks a downloaded recording: every chunk decodes, sequence numbers run 0..n-1, each names the
 * digest of the one before, and the last digest and the count match what the control plane stored.
 * Names the first bad chunk.
 */
export interface ExpectedRecording {
  readonly sessionId: string;
  readonly finalDigest: string;
  readonly chunkCount: number;
  /** Per-chunk digests from the manifest; with them a changed chunk is named itself, not its successor. */
  readonly digests?: readonly string[];
}

export function verifyChain(chunks: readonly Buffer[], expected: ExpectedRecording): Result<{ finalDigest: string }, ChunkProblem> {
  if (expected.digests && (expected.digests.length !== expected.chunkCount || expected.digests[expected.chunkCount - 1] !== expected.finalDigest)) {
    return err({ chunk: 0, reason: 'the manifest does not match the digest stored for the session' });
  }
  let prev = GENESIS_DIGEST;
  for (let i = 0; i < chunks.length; i++) {
    const stored = chunks[i] as Buffer;
    if (expected.digests && expected.digests[i] !== chunkDigest(stored)) return err({ chunk: i, reason: 'content differs from the digest recorded for it' });
    const decoded = decodeChunk(stored, i);
    if (!decoded.ok) return decoded;
    const { header } = decoded.value;
    if (header.sessionId !== expected.sessionId) return err({ chunk: i, reason: 'belongs to another session' });
    if (header.seq !== i) return err({ chunk: i, reason: `sequence number ${header.seq}, expected ${i}` });
    if (header.prev !== prev) return err({ chunk: i, reason: 'does not chain to the previous chunk' });
    prev = chunkDigest(stored);
  }
  if (chunks.length !== expected.chunkCount) return err({ chunk: chunks.length, reason: `${chunks.length} chunks, the recording has ${expected.chunkCount}` });
  if (prev !== expected.finalDigest) return err({ chunk: Math.max(0, chunks.length - 1), reason: 'final digest does not match the one stored' });
  return ok({ finalDigest: prev });
}
