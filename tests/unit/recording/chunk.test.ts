import { gunzipSync } from 'node:zlib';
import { chunkDigest, decodeChunk, encodeChunk, GENESIS_DIGEST, GZIP_MEMBER_BYTES, gzipMember, verifyChain, wholeMembersLength, type ChunkHeader } from '../../../core/recording/chunk';

const SESSION = 'a1b2c3d4-0000-4000-8000-000000000001';

function chain(bodies: string[]): { chunks: Buffer[]; finalDigest: string } {
  const chunks: Buffer[] = [];
  let prev = GENESIS_DIGEST;
  bodies.forEach((body, seq) => {
    const header: ChunkHeader = { twokey: 'recording-chunk', v: 1, sessionId: SESSION, seq, format: 'ndjson', prev, createdAt: '2026-11-28T00:00:00.000Z' };
    const chunk = encodeChunk(header, Buffer.from(body));
    chunks.push(chunk);
    prev = chunkDigest(chunk);
  });
  return { chunks, finalDigest: prev };
}

describe('recording chunk chain', () => {
  const { chunks, finalDigest } = chain(['{"e":"start"}\n', '{"e":"statement"}\n', '{"e":"end"}\n']);
  const expected = { finalDigest, chunkCount: 3, sessionId: SESSION };

  it('stores a large body as gzip members that read back as one stream', () => {
    const lines = Array.from({ length: 30_000 }, (_, i) => `{"e":"row","v":["${i}"]}`).join('\n');
    expect(lines.length).toBeGreaterThan(2 * GZIP_MEMBER_BYTES);
    const big = chain([lines]);
    const decoded = decodeChunk(big.chunks[0] as Buffer, 0);
    expect(decoded.ok && decoded.value.body.toString('utf8')).toBe(lines);
    // Any gunzip reads the members as one stream: the header line, then the events.
    expect(gunzipSync(big.chunks[0] as Buffer).toString('utf8').split('\n').length).toBe(30_001);
    expect(verifyChain(big.chunks, { finalDigest: big.finalDigest, chunkCount: 1, sessionId: SESSION }).ok).toBe(true);
  });

  it('verifies an untouched chain', () => {
    expect(verifyChain(chunks, expected)).toEqual({ ok: true, value: { finalDigest } });
  });

  it('names the first chunk with one byte changed', () => {
    const tampered = chunks.map((c) => Buffer.from(c));
    const middle = tampered[1] as Buffer;
    middle[middle.length - 10] = (middle[middle.length - 10] as number) ^ 0xff;
    const result = verifyChain(tampered, expected);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.chunk).toBe(1);
  });

  it('names the changed chunk itself when the manifest lists every digest, even if gzip still decodes', () => {
    const digests = chunks.map(chunkDigest);
    const tampered = chunks.map((c) => Buffer.from(c));
    (tampered[1] as Buffer)[4] = 0x42; // the gzip header's mtime: still a valid stream
    const result = verifyChain(tampered, { ...expected, digests });
    expect(!result.ok && result.error).toEqual({ chunk: 1, reason: 'content differs from the digest recorded for it' });
    expect(verifyChain(chunks, { ...expected, digests }).ok).toBe(true);
  });

  it('names a missing chunk and a reordered chain', () => {
    const missing = verifyChain([chunks[0] as Buffer, chunks[2] as Buffer], expected);
    expect(!missing.ok && missing.error).toEqual({ chunk: 1, reason: 'sequence number 2, expected 1' });
    const truncated = verifyChain(chunks.slice(0, 2), expected);
    expect(!truncated.ok && truncated.error.chunk).toBe(2);
  });

  it('refuses a chain whose last digest differs from the stored one', () => {
    const other = chain(['{"e":"start"}\n', '{"e":"statement"}\n', '{"e":"forged end"}\n']);
    const result = verifyChain(other.chunks, expected);
    expect(!result.ok && result.error.reason).toMatch(/final digest/);
  });

  it('finds where the whole gzip members of a file cut short end', () => {
    const members = [gzipMember(Buffer.from('{"e":"one"}\n')), gzipMember(Buffer.from('{"e":"two"}\n')), gzipMember(Buffer.from('{"e":"three"}\n'))];
    const whole = Buffer.concat(members);
    const firstTwo = (members[0] as Buffer).length + (members[1] as Buffer).length;
    expect(wholeMembersLength(whole)).toBe(whole.length);
    for (const cut of [firstTwo + 1, firstTwo + 10, whole.length - 1]) expect(wholeMembersLength(whole.subarray(0, cut))).toBe(firstTwo);
    expect(wholeMembersLength(whole.subarray(0, 5))).toBe(0);
  });
});
