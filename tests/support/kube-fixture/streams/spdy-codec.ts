import { constants, inflateSync } from 'node:zlib';

/**
 * SPDY/3.1 framing (draft-mbelshe-httpbis-spdy-00, the version Kubernetes streams use for exec,
 * attach and port-forward), I/O-free: bytes in, frames out; frames in, bytes out.
 */
export const SPDY_VERSION = 3;
export const FLAG_FIN = 0x01;
const FRAME_HEADER_BYTES = 8;
/** The most one frame may carry (its length field has 24 bits). */
export const MAX_FRAME_BYTES = 0xffffff;
/** The most compressed header bytes a connection may send in total (headers are a few per stream). */
export const MAX_HEADER_STREAM_BYTES = 1024 * 1024;
const MAX_HEADER_PAIRS = 256;

export const CONTROL = { SYN_STREAM: 1, SYN_REPLY: 2, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, HEADERS: 8, WINDOW_UPDATE: 9 } as const;

export type SpdyFrame =
  | { type: 'data'; streamId: number; flags: number; data: Buffer }
  | { type: 'control'; control: number; flags: number; body: Buffer };

export class SpdyProtocolError extends Error {}

/** Splits a byte stream into frames, wherever TCP cut it. */
export class SpdyFramer {
  private buffer: Buffer = Buffer.alloc(0);

  push(chunk: Buffer, onFrame: (frame: SpdyFrame) => void): void {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    while (this.buffer.length >= FRAME_HEADER_BYTES) {
      const length = this.buffer.readUIntBE(5, 3);
      if (this.buffer.length < FRAME_HEADER_BYTES + length) return;
      const flags = this.buffer.readUInt8(4);
      const body = this.buffer.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + length);
      const first = this.buffer.readUInt32BE(0);
      this.buffer = this.buffer.subarray(FRAME_HEADER_BYTES + length);
      if (first & 0x80000000) {
        const version = (first >>> 16) & 0x7fff;
        if (version !== SPDY_VERSION) throw new SpdyProtocolError(`unsupported SPDY version ${version}`);
        onFrame({ type: 'control', control: first & 0xffff, flags, body });
      } else onFrame({ type: 'data', streamId: first & 0x7fffffff, flags, data: body });
    }
  }
}

function frameHeader(first: number, flags: number, length: number): Buffer {
  if (length > MAX_FRAME_BYTES) throw new SpdyProtocolError('frame too long');
  const header = Buffer.alloc(FRAME_HEADER_BYTES);
  header.writeUInt32BE(first >>> 0, 0);
  header.writeUInt8(flags, 4);
  header.writeUIntBE(length, 5, 3);
  return header;
}

export function encodeData(streamId: number, data: Buffer, flags = 0): Buffer {
  return Buffer.concat([frameHeader(streamId & 0x7fffffff, flags, data.length), data]);
}

export function encodeControl(control: number, flags: number, body: Buffer): Buffer {
  return Buffer.concat([frameHeader((0x8000 | SPDY_VERSION) * 0x10000 + control, flags, body.length), body]);
}

const u32 = (value: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value >>> 0);
  return b;
};

export const encodeSynReply = (streamId: number, headerBlock: Buffer, flags = 0): Buffer => encodeControl(CONTROL.SYN_REPLY, flags, Buffer.concat([u32(streamId & 0x7fffffff), headerBlock]));
export const encodeRstStream = (streamId: number, status: number): Buffer => encodeControl(CONTROL.RST_STREAM, 0, Buffer.concat([u32(streamId), u32(status)]));
export const encodePing = (id: number): Buffer => encodeControl(CONTROL.PING, 0, u32(id));
export const encodeGoAway = (lastGoodStreamId: number, status = 0): Buffer => encodeControl(CONTROL.GOAWAY, 0, Buffer.concat([u32(lastGoodStreamId), u32(status)]));

/** The stream a SYN_STREAM opens and its still-compressed header block. */
export function parseSynStream(body: Buffer): { streamId: number; headerBlock: Buffer } {
  if (body.length < 10) throw new SpdyProtocolError('short SYN_STREAM');
  return { streamId: body.readUInt32BE(0) & 0x7fffffff, headerBlock: body.subarray(10) };
}

/** SPDY/3's zlib dictionary for header blocks (section 2.6.10.1): length-prefixed names, then common values. */
const DICTIONARY_WORDS = [
  'options', 'head', 'post', 'put', 'delete', 'trace', 'accept', 'accept-charset', 'accept-encoding', 'accept-language', 'accept-ranges', 'age', 'allow', 'authorization', 'cache-control',
  'connection', 'content-base', 'content-encoding', 'content-language', 'content-length', 'content-location', 'content-md5', 'content-range', 'content-type', 'date', 'etag', 'expect',
  'expires', 'from', 'host', 'if-match', 'if-modified-since', 'if-none-match', 'if-range', 'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'pragma', 'proxy-authenticate',
  'proxy-authorization', 'range', 'referer', 'retry-after', 'server', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'user-agent', 'vary', 'via', 'warning', 'www-authenticate', 'method',
  'get', 'status', '200 OK', 'version', 'HTTP/1.1', 'url', 'public', 'set-cookie', 'keep-alive', 'origin',
];
const DICTIONARY_TAIL =
  '100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.';
export const HEADER_DICTIONARY = Buffer.concat([...DICTIONARY_WORDS.map((w) => Buffer.concat([u32(w.length), Buffer.from(w, 'latin1')])), Buffer.from(DICTIONARY_TAIL, 'latin1')]);

function adler32(data: Buffer): number {
  let a = 1;
  let b = 0;
  for (const byte of data) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}

export type Headers = Map<string, string>;

function encodeHeaderBlock(headers: Headers): Buffer {
  const parts = [u32(headers.size)];
  for (const [name, value] of headers) {
    const n = Buffer.from(name.toLowerCase(), 'utf8');
    const v = Buffer.from(value, 'utf8');
    parts.push(u32(n.length), n, u32(v.length), v);
  }
  return Buffer.concat(parts);
}

function decodeHeaderBlock(block: Buffer): Headers {
  const headers: Headers = new Map();
  let offset = 0;
  const read = (): Buffer => {
    if (offset + 4 > block.length) throw new SpdyProtocolError('truncated header block');
    const length = block.readUInt32BE(offset);
    offset += 4;
    if (offset + length > block.length) throw new SpdyProtocolError('truncated header block');
    const value = block.subarray(offset, offset + length);
    offset += length;
    return value;
  };
  if (block.length < 4) throw new SpdyProtocolError('truncated header block');
  const count = block.readUInt32BE(0);
  offset = 4;
  if (count > MAX_HEADER_PAIRS) throw new SpdyProtocolError('too many headers');
  // As Go's SPDY reader and http.Header.Get: a value splits at NUL, and a repeated name keeps its first value.
  for (let i = 0; i < count; i++) {
    const name = read().toString('utf8').toLowerCase();
    const value = read().toString('utf8').split('\u0000')[0] ?? '';
    if (!headers.has(name)) headers.set(name, value);
  }
  return headers;
}

const MAX_STORED_BLOCK_BYTES = 0xffff;
const SYNC_FLUSH_MARKER = Buffer.from([0x00, 0x00, 0x00, 0xff, 0xff]);

/**
 * Compresses header blocks as one zlib stream (the peer keeps one inflater per connection) made of
 * stored blocks, each block ending in a sync flush as Go's writer ends it: valid deflate that needs
 * no compressor state on this side.
 */
export class HeaderCompressor {
  private started = false;

  compress(headers: Headers): Buffer {
    const raw = encodeHeaderBlock(headers);
    const parts: Buffer[] = [];
    if (!this.started) {
      this.started = true;
      parts.push(Buffer.from([0x78, 0xbb]), u32(adler32(HEADER_DICTIONARY)));
    }
    for (let offset = 0; offset < raw.length; offset += MAX_STORED_BLOCK_BYTES) {
      const piece = raw.subarray(offset, offset + MAX_STORED_BLOCK_BYTES);
      const header = Buffer.alloc(5);
      header.writeUInt8(0, 0);
      header.writeUInt16LE(piece.length, 1);
      header.writeUInt16LE(~piece.length & 0xffff, 3);
      parts.push(header, piece);
    }
    // An empty stored block (a zlib sync flush) makes the peer's inflater hand out what it has read.
    parts.push(SYNC_FLUSH_MARKER);
    return Buffer.concat(parts);
  }
}

/**
 * Inflates the peer's header blocks: one zlib stream across the connection, so each block is
 * decoded by inflating everything received so far and keeping the new output (bounded).
 */
export class HeaderDecompressor {
  private compressed: Buffer = Buffer.alloc(0);
  private produced = 0;

  decompress(block: Buffer): Headers {
    this.compressed = Buffer.concat([this.compressed, block]);
    if (this.compressed.length > MAX_HEADER_STREAM_BYTES) throw new SpdyProtocolError('too many header bytes on one connection');
    let all: Buffer;
    try {
      all = inflateSync(this.compressed, { dictionary: HEADER_DICTIONARY, finishFlush: constants.Z_SYNC_FLUSH });
    } catch (e) {
      throw new SpdyProtocolError(`bad header block: ${(e as Error).message}`);
    }
    const fresh = all.subarray(this.produced);
    this.produced = all.length;
    return decodeHeaderBlock(fresh);
  }
}
