import { sshString } from '../../../core/ssh/wire';
import { uint32, wirePacket } from '../../support/sftp-bytes';
import { MAX_SFTP_PACKET_BYTES, SFTP_TYPE } from '../../../agent/ssh/sftp/packets';
import { SftpReplyStream, type ReplyPiece } from '../../../agent/ssh/sftp/reply-stream';

const version = wirePacket(SFTP_TYPE.version, uint32(3));
const handle = wirePacket(SFTP_TYPE.handle, uint32(7), sshString('h-7'));
const data = wirePacket(SFTP_TYPE.data, uint32(8), sshString(Buffer.alloc(40, 0xab)));
const status = wirePacket(SFTP_TYPE.status, uint32(9), uint32(0), sshString('ok'), sshString(''));
/** A reply shorter than a head: its length and type only. */
const tiny = wirePacket(SFTP_TYPE.status);
const replies = [version, handle, data, tiny, status];
const stream = Buffer.concat(replies);
/** Offsets in `stream` where a reply ends. */
const ends = new Set(replies.map((_, i) => replies.slice(0, i + 1).reduce((n, r) => n + r.length, 0)));

/** Feeds `stream` cut at `points` (each cut a chunk of its own memory, as SSH packets are); returns the pieces and the wanted replies. */
function cutAt(points: number[], wanted = (id: number | undefined): boolean => id === 7): { pieces: ReplyPiece[]; whole: Buffer[]; boundaries: number[] } {
  const replyStream = new SftpReplyStream((_type, id) => wanted(id));
  const pieces: ReplyPiece[] = [];
  let from = 0;
  for (const to of [...points, stream.length]) {
    const cut = replyStream.push(Buffer.from(stream.subarray(from, to)));
    if ('invalidLength' in cut) throw new Error('unexpected');
    pieces.push(...cut.pieces);
    from = to;
  }
  expect(replyStream.atBoundary).toBe(true);
  let at = 0;
  const boundaries: number[] = [];
  for (const piece of pieces) {
    if (piece.boundary > 0) boundaries.push(at + piece.boundary);
    at += piece.bytes.length;
  }
  return { pieces, whole: pieces.filter((p) => p.whole).map((p) => p.bytes), boundaries };
}

describe('SFTP reply stream', () => {
  it('passes every byte in order and holds the wanted reply whole, at every split point and pair of split points', () => {
    for (let i = 0; i <= stream.length; i++) {
      for (let j = i; j <= stream.length; j += 5) {
        const { pieces, whole, boundaries } = cutAt([i, j]);
        expect(Buffer.concat(pieces.map((p) => p.bytes))).toEqual(stream);
        expect(whole).toEqual([handle]);
        // Every boundary it reports is where a reply ends: the agent's own replies never go inside one.
        for (const b of boundaries) expect(ends.has(b)).toBe(true);
      }
    }
  });

  it('passes every byte from one byte at a time', () => {
    const { pieces, whole } = cutAt(Array.from({ length: stream.length }, (_, i) => i));
    expect(Buffer.concat(pieces.map((p) => p.bytes))).toEqual(stream);
    expect(whole).toEqual([handle]);
  });

  it('passes a chunk of replies it does not read as one piece, without copying it', () => {
    const chunk = Buffer.concat([data, status]);
    const cut = new SftpReplyStream(() => false).push(chunk);
    expect(cut).toEqual({ pieces: [{ bytes: chunk, whole: false, boundary: chunk.length }] });
    if ('pieces' in cut) expect(cut.pieces[0]?.bytes.buffer).toBe(chunk.buffer);
  });

  it('reports the last reply boundary inside a piece that ends part-way through a reply', () => {
    const chunk = Buffer.concat([status, data.subarray(0, 30)]);
    const replyStream = new SftpReplyStream(() => false);
    expect(replyStream.push(chunk)).toEqual({ pieces: [{ bytes: chunk, whole: false, boundary: status.length }] });
    expect(replyStream.atBoundary).toBe(false);
    expect(replyStream.push(data.subarray(30))).toEqual({ pieces: [{ bytes: data.subarray(30), whole: false, boundary: data.length - 30 }] });
    expect(replyStream.atBoundary).toBe(true);
  });

  it('gives a wanted reply that is all head as soon as it is complete', () => {
    const replyStream = new SftpReplyStream(() => true);
    const short = wirePacket(SFTP_TYPE.status, uint32(7));
    expect(replyStream.push(short)).toEqual({ pieces: [{ bytes: short, whole: true, boundary: short.length }] });
  });

  it('refuses a reply length of zero or over the cap as soon as the length is read', () => {
    expect(new SftpReplyStream(() => false).push(uint32(0))).toEqual({ invalidLength: 0 });
    expect(new SftpReplyStream(() => false).push(Buffer.concat([status, uint32(MAX_SFTP_PACKET_BYTES + 1)]))).toEqual({ invalidLength: MAX_SFTP_PACKET_BYTES + 1 });
  });
});
