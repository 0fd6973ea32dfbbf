import { constants, inflateSync } from 'node:zlib';
import { err, ok, type Result } from '../result';

/**
 * Reading SPDY/3.1 (the framing Kubernetes' SPDY upgrades use for exec, attach and port-forward) as
 * it passes: frames out of a byte stream cut anywhere, and the header blocks of one direction, which
 * SPDY compresses as one zlib stream across the connection with a preset dictionary. I/O-free; every
 * size bounded.
 */

/** The largest frame read: kubelets and kubectl write data frames of 32 KiB; a larger one is refused. */
export const MAX_SPDY_FRAME_BYTES = 1024 * 1024;
/** Compressed header bytes one direction may send in all (a stream's headers are a few names). */
export const MAX_SPDY_HEADER_BYTES = 64 * 1024;
/** What those may inflate to. */
export const MAX_SPDY_HEADER_TEXT_BYTES = 256 * 1024;
/**
 * Header blocks one direction may send: each is read by inflating all before it again, so their count
 * bounds the work (kubectl opens five streams; 8,000 empty blocks after one that inflates to 200 KB
 * took two seconds of the event loop).
 */
export const MAX_SPDY_HEADER_BLOCKS = 64;
/** Header pairs in one block. */
export const MAX_SPDY_HEADER_PAIRS = 64;

const FRAME_HEADER_BYTES = 8;
const SPDY_VERSION = 3;
export const SPDY_CONTROL = { SYN_STREAM: 1, SYN_REPLY: 2, HEADERS: 8 } as const;

export type SpdyFrame = { readonly kind: 'data'; readonly streamId: number; readonly flags: number; readonly data: Buffer } | { readonly kind: 'control'; readonly type: number; readonly flags: number; readonly body: Buffer };

/** Frames out of one direction's bytes, wherever TCP cut them. */
export class SpdyFrameReader {
  private chunks: Buffer[] = [];
  private size = 0;
  /** Bytes needed before the next frame can be read (a large frame's pieces are joined once, when all are there). */
  private needed = FRAME_HEADER_BYTES;

  /** The frames `chunk` completes; their bodies are views into the bytes read, valid until the next push. */
  push(chunk: Buffer): Result<SpdyFrame[], string> {
    this.chunks.push(chunk);
    this.size += chunk.length;
    if (this.size < this.needed) return ok([]);
    let buffered = this.chunks.length === 1 ? chunk : Buffer.concat(this.chunks, this.size);
    const frames: SpdyFrame[] = [];
    this.needed = FRAME_HEADER_BYTES;
    while (buffered.length >= FRAME_HEADER_BYTES) {
      const length = buffered.readUIntBE(5, 3);
      if (length > MAX_SPDY_FRAME_BYTES) return err(`a SPDY frame of ${length} bytes is over ${MAX_SPDY_FRAME_BYTES}`);
      if (buffered.length < FRAME_HEADER_BYTES + length) {
        this.needed = FRAME_HEADER_BYTES + length;
        break;
      }
      const first = buffered.readUInt32BE(0);
      const flags = buffered.readUInt8(4);
      const body = buffered.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + length);
      buffered = buffered.subarray(FRAME_HEADER_BYTES + length);
      if ((first & 0x80000000) === 0) {
        frames.push({ kind: 'data', streamId: first & 0x7fffffff, flags, data: body });
        continue;
      }
      const version = (first >>> 16) & 0x7fff;
      if (version !== SPDY_VERSION) return err(`SPDY version ${version} is not 3`);
      frames.push({ kind: 'control', type: first & 0xffff, flags, body });
    }
    this.chunks = buffered.length ? [buffered] : [];
    this.size = buffered.length;
    return ok(frames);
  }
}

/** The stream a SYN_STREAM opens and its compressed header block (after stream id, associated id, priority and slot). */
export function synStream(body: Buffer): Result<{ streamId: number; headerBlock: Buffer }, string> {
  if (body.length < 10) return err('a SYN_STREAM is shorter than its fixed fields');
  return ok({ streamId: body.readUInt32BE(0) & 0x7fffffff, headerBlock: body.subarray(10) });
}

/** The header block of a HEADERS frame (after its stream id). */
export function headersBlock(body: Buffer): Result<Buffer, string> {
  return body.length < 4 ? err('a HEADERS frame is shorter than its stream id') : ok(body.subarray(4));
}

/** SPDY/3's header dictionary (draft-mbelshe-httpbis-spdy-00, 2.6.10.1): length-prefixed words, then a run of common values. */
const DICTIONARY_WORDS =
  'options head post put delete trace accept accept-charset accept-encoding accept-language accept-ranges age allow authorization cache-control connection content-base content-encoding content-language content-length content-location content-md5 content-range content-type date etag expect expires from host if-match if-modified-since if-none-match if-range if-unmodified-since last-modified location max-forwards pragma proxy-authenticate proxy-authorization range referer retry-after server te trailer transfer-encoding upgrade user-agent vary via warning www-authenticate method get status';
const DICTIONARY_MORE = ['200 OK', 'version', 'HTTP/1.1', 'url', 'public', 'set-cookie', 'keep-alive', 'origin'];
const DICTIONARY_RUN =
  '100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.';

const lengthPrefixed = (word: string): Buffer => {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(word.length);
  return Buffer.concat([length, Buffer.from(word, 'latin1')]);
};

export const SPDY_HEADER_DICTIONARY = Buffer.concat([...[...DICTIONARY_WORDS.split(' '), ...DICTIONARY_MORE].map(lengthPrefixed), Buffer.from(DICTIONARY_RUN, 'latin1')]);

/**
 * One direction's header blocks, decoded in order. Node's zlib has no synchronous streaming inflate,
 * so each block is read by inflating everything this direction sent so far and keeping the new text;
 * MAX_SPDY_HEADER_BYTES and MAX_SPDY_HEADER_BLOCKS keep that cheap (a stream's headers are a few dozen bytes).
 */
export class SpdyHeaderReader {
  private compressed: Buffer = Buffer.alloc(0);
  private produced = 0;
  private blocks = 0;

  read(block: Buffer): Result<Map<string, string>, string> {
    if (++this.blocks > MAX_SPDY_HEADER_BLOCKS) return err(`over ${MAX_SPDY_HEADER_BLOCKS} SPDY header blocks on one connection`);
    this.compressed = Buffer.concat([this.compressed, block]);
    if (this.compressed.length > MAX_SPDY_HEADER_BYTES) return err(`SPDY header blocks over ${MAX_SPDY_HEADER_BYTES} bytes on one connection`);
    let text: Buffer;
    try {
      text = inflateSync(this.compressed, { dictionary: SPDY_HEADER_DICTIONARY, finishFlush: constants.Z_SYNC_FLUSH, maxOutputLength: MAX_SPDY_HEADER_TEXT_BYTES });
    } catch (e) {
      return err(`a SPDY header block cannot be inflated (${(e as Error).message})`);
    }
    const fresh = text.subarray(this.produced);
    this.produced = text.length;
    return headerPairs(fresh);
  }
}

function headerPairs(block: Buffer): Result<Map<string, string>, string> {
  let offset = 0;
  const next = (): Buffer | undefined => {
    if (offset + 4 > block.length) return undefined;
    const length = block.readUInt32BE(offset);
    if (offset + 4 + length > block.length) return undefined;
    const value = block.subarray(offset + 4, offset + 4 + length);
    offset += 4 + length;
    return value;
  };
  if (block.length < 4) return err('a SPDY header block is cut short');
  const count = block.readUInt32BE(0);
  if (count > MAX_SPDY_HEADER_PAIRS) return err(`a SPDY header block has over ${MAX_SPDY_HEADER_PAIRS} headers`);
  offset = 4;
  const headers = new Map<string, string>();
  for (let i = 0; i < count; i++) {
    const name = next();
    const value = next();
    if (name === undefined || value === undefined) return err('a SPDY header block is cut short');
    // Go's SPDY reader keeps a repeated name's values, and splits a value at NUL, and readers take the
    // first: `streamtype: stdin` then `streamtype: error` is stdin to the API server. Both are refused.
    const key = name.toString('utf8').toLowerCase();
    if (headers.has(key)) return err(`a SPDY header block names ${key} twice`);
    if (value.includes(0)) return err(`a SPDY header block packs several values into ${key}`);
    headers.set(key, value.toString('utf8'));
  }
  if (offset !== block.length) return err('a SPDY header block has bytes after its headers');
  return ok(headers);
}
